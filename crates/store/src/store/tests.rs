//! Store tests on a real LMDB environment in a temporary directory.

use std::sync::Arc;

use super::*;
use crate::store::records::FlagMode;
use crate::store::records::ScramCredentials;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn add_user(store: &Store, name: &str) -> User {
    let op = WriteOp::AddUser(NewUser {
        name: name.into(),
        password_hash: "x".into(),
        scram: ScramCredentials::placeholder(),
        admin: false,
    });
    match store.write_blocking(op).unwrap() {
        WriteOutcome::User(u) => u,
        other => panic!("{other:?}"),
    }
}

fn deliver(store: &Store, users: &[&str], body: &[u8]) -> Vec<Result<Delivered, StoreError>> {
    let (message, structure) = crate::mime::ingest(body.to_vec()).unwrap();
    let op = WriteOp::Deliver {
        message: message.into(),
        structure: Arc::new(structure),
        recipients: users
            .iter()
            .map(|u| Recipient {
                user: (*u).into(),
                mailbox: "INBOX".into(),
            })
            .collect(),
    };
    match store.write_blocking(op).unwrap() {
        WriteOutcome::Delivered(r) => r,
        other => panic!("{other:?}"),
    }
}

fn body_of(store: &Store, user: &User, uid: u32) -> Option<Vec<u8>> {
    let snap = store.snapshot().unwrap();
    let inbox = snap.mailbox(user.id, "inbox").unwrap().unwrap();
    let record = snap.message(inbox.id, uid).unwrap()?;
    Some(
        snap.body(record.body_id, 0)
            .unwrap()
            .map(|c| c.unwrap().to_vec())
            .collect::<Vec<_>>()
            .concat(),
    )
}

#[test]
fn new_users_get_the_special_use_folders_with_distinct_uid_validity() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    let boxes = store.snapshot().unwrap().mailboxes(bob.id).unwrap();
    let names: Vec<_> = boxes.iter().map(|m| m.name.as_str()).collect();
    for name in ["INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"] {
        assert!(names.contains(&name), "{name} missing");
    }
    let mut validities: Vec<_> = boxes.iter().map(|m| m.uid_validity).collect();
    validities.sort();
    validities.dedup();
    assert_eq!(validities.len(), boxes.len());
    assert!(matches!(
        store.write_blocking(WriteOp::AddUser(NewUser {
            name: "bob".into(),
            password_hash: String::new(),
            scram: bob.scram.clone(),
            admin: false,
        })),
        Err(StoreError::UserExists(_))
    ));
}

#[test]
fn shared_bodies_live_until_the_last_copy_goes() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    let carol = add_user(&store, "carol");
    let big: Vec<u8> = [b"Subject: big\r\n\r\n".as_slice(), &vec![b'x'; 3 * CHUNK_SIZE + 17]].concat();
    let results = deliver(&store, &["bob", "nobody", "carol"], &big);
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(matches!(results[1], Err(StoreError::NoSuchUser(_))));
    assert_eq!(body_of(&store, &bob, 1).unwrap(), big, "chunks reassemble");
    let bob_inbox = results[0].as_ref().unwrap().mailbox;
    store
        .write_blocking(WriteOp::Expunge {
            mailbox: bob_inbox,
            uids: vec![1, 99],
        })
        .unwrap();
    assert_eq!(body_of(&store, &bob, 1), None);
    assert_eq!(
        body_of(&store, &carol, 1).unwrap(),
        big,
        "carol's copy survives bob's expunge"
    );
    let carol_inbox = results[2].as_ref().unwrap().mailbox;
    let record = store.snapshot().unwrap().message(carol_inbox, 1).unwrap().unwrap();
    store
        .write_blocking(WriteOp::Expunge {
            mailbox: carol_inbox,
            uids: vec![1],
        })
        .unwrap();
    let snap = store.snapshot().unwrap();
    assert_eq!(
        snap.body(record.body_id, 0).unwrap().count(),
        0,
        "last reference frees the chunks"
    );
    assert!(snap.structure(record.body_id).unwrap().is_none());
    assert_eq!(snap.usage(carol.id).unwrap(), records::Usage::default());
}

#[test]
fn uids_are_never_reused() {
    let (_d, store) = store();
    add_user(&store, "bob");
    let first = deliver(&store, &["bob"], b"A: b\r\n\r\n1\r\n")[0]
        .as_ref()
        .copied()
        .unwrap();
    store
        .write_blocking(WriteOp::Expunge {
            mailbox: first.mailbox,
            uids: vec![first.uid],
        })
        .unwrap();
    let second = deliver(&store, &["bob"], b"A: b\r\n\r\n2\r\n")[0]
        .as_ref()
        .copied()
        .unwrap();
    assert_eq!((first.uid, second.uid), (1, 2));
    let inbox = store.snapshot().unwrap().mailbox(1, "INBOX").unwrap().unwrap();
    assert_eq!((inbox.uid_next, inbox.messages), (3, 1));
    assert!(inbox.highest_modseq >= 4, "every change raised HIGHESTMODSEQ");
}

#[test]
fn messages_from_a_uid_stay_in_their_mailbox() {
    let (_d, store) = store();
    add_user(&store, "bob");
    add_user(&store, "carol");
    let mut delivered = Vec::new();
    for i in 1..=5 {
        delivered = deliver(&store, &["bob", "carol"], format!("A: b\r\n\r\n{i}\r\n").as_bytes());
    }
    let (bob, carol) = (
        delivered[0].as_ref().unwrap().mailbox,
        delivered[1].as_ref().unwrap().mailbox,
    );
    store
        .write_blocking(WriteOp::Expunge {
            mailbox: bob,
            uids: vec![3],
        })
        .unwrap();
    let snap = store.snapshot().unwrap();
    let from = |mailbox, uid| -> Vec<u32> {
        let all = snap.messages_from(mailbox, uid).unwrap();
        all.map(|m| m.unwrap().0).collect()
    };
    assert_eq!(from(bob, 0), [1, 2, 4, 5]);
    assert_eq!(from(bob, 3), [4, 5]);
    assert_eq!(from(bob, 5), [5]);
    assert!(from(bob, 6).is_empty() && from(bob, u32::MAX).is_empty());
    assert_eq!(from(carol, 2), [2, 3, 4, 5]);
    let all: Vec<u32> = snap.messages(bob).unwrap().map(|m| m.unwrap().0).collect();
    assert_eq!(all, from(bob, 0));
    let uids = |mailbox| -> Vec<u32> { snap.message_uids(mailbox).unwrap().map(Result::unwrap).collect() };
    assert_eq!(uids(bob), all);
    assert_eq!(uids(carol), [1, 2, 3, 4, 5]);
}

#[test]
fn the_feed_reports_typed_changes_after_commit() {
    let (_d, store) = store();
    add_user(&store, "bob");
    let mut feed = store.subscribe();
    let d = deliver(&store, &["bob"], b"A: b\r\n\r\nx\r\n")[0]
        .as_ref()
        .copied()
        .unwrap();
    let changes = feed.try_recv().expect("published before the reply");
    assert_eq!(changes[0].kind, ChangeKind::Added { uid: 1 });
    assert_eq!(changes[0].mailbox, d.mailbox);
    store
        .write_blocking(WriteOp::Expunge {
            mailbox: d.mailbox,
            uids: vec![1],
        })
        .unwrap();
    let changes = feed.try_recv().unwrap();
    assert_eq!(changes[0].kind, ChangeKind::Expunged { uids: vec![1] });
    assert!(feed.try_recv().is_err());
}

#[test]
fn queued_writes_share_commits_and_a_failure_stays_alone() {
    let (_d, store) = store();
    add_user(&store, "bob");
    let before = store.commits();
    let mut replies = Vec::new();
    for i in 0..200 {
        let (message, structure) = crate::mime::ingest(format!("N: {i}\r\n\r\nx\r\n").into_bytes()).unwrap();
        replies.push(
            store
                .submit(WriteOp::Deliver {
                    message: message.into(),
                    structure: Arc::new(structure),
                    recipients: vec![Recipient {
                        user: "bob".into(),
                        mailbox: "INBOX".into(),
                    }],
                })
                .unwrap(),
        );
    }
    replies.push(store.submit(WriteOp::DeleteUser { name: "nobody".into() }).unwrap());
    let results: Vec<_> = replies.into_iter().map(|r| r.blocking_recv().unwrap()).collect();
    assert!(results[..200].iter().all(|r| r.is_ok()));
    assert!(matches!(results[200], Err(StoreError::NoSuchUser(_))));
    let commits = store.commits() - before;
    assert!(commits < 200, "{commits} commits for 201 writes: no grouping");
    let inbox = store.snapshot().unwrap().mailbox(1, "INBOX").unwrap().unwrap();
    assert_eq!(inbox.messages, 200);
}

fn write(store: &Store, op: WriteOp) -> WriteOutcome {
    store.write_blocking(op).unwrap()
}

#[test]
fn store_flags_with_unchanged_since() {
    let (_d, store) = store();
    add_user(&store, "bob");
    let a = deliver(&store, &["bob"], b"A: b\r\n\r\n1\r\n")[0]
        .as_ref()
        .copied()
        .unwrap();
    deliver(&store, &["bob"], b"A: b\r\n\r\n2\r\n");
    let op = |uids: Vec<u32>, mode, flags, kw: &[&str], since| WriteOp::StoreFlags {
        mailbox: a.mailbox,
        uids,
        mode,
        flags,
        keywords: kw.iter().map(|k| k.to_string()).collect(),
        unchanged_since: since,
    };
    let WriteOutcome::Flags { changed, modified } = write(
        &store,
        op(vec![1, 2, 9], FlagMode::Add, records::flags::SEEN, &["Work"], None),
    ) else {
        panic!()
    };
    assert_eq!(changed.len(), 2);
    assert!(modified.is_empty());
    let m1 = changed[0].modseq;
    let WriteOutcome::Flags { changed, .. } = write(
        &store,
        op(vec![1], FlagMode::Add, records::flags::SEEN, &["work"], None),
    ) else {
        panic!()
    };
    assert_eq!(
        (changed[0].modseq, changed[0].keywords.clone()),
        (m1, vec!["Work".to_string()]),
        "no-op keeps modseq"
    );
    let WriteOutcome::Flags { changed, modified } = write(
        &store,
        op(vec![1, 2], FlagMode::Remove, records::flags::SEEN, &["WORK"], Some(m1)),
    ) else {
        panic!()
    };
    assert_eq!(modified, vec![2], "2 changed after m1");
    assert_eq!(
        (changed[0].flags & !records::flags::INTERNAL, changed[0].keywords.len()),
        (0, 0)
    );
}

#[test]
fn copy_move_and_vanished() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    let a = deliver(&store, &["bob"], b"A: b\r\n\r\n1\r\n")[0]
        .as_ref()
        .copied()
        .unwrap();
    deliver(&store, &["bob"], b"A: b\r\n\r\n2\r\n");
    let snap = store.snapshot().unwrap();
    let archive = snap.mailbox(bob.id, "Archive").unwrap().unwrap();
    let before = snap.mailbox(bob.id, "INBOX").unwrap().unwrap().highest_modseq;
    drop(snap);
    let WriteOutcome::Copied { uid_validity, pairs } = write(
        &store,
        WriteOp::Copy {
            from: a.mailbox,
            uids: vec![1, 2],
            to: archive.id,
            expunge_source: false,
        },
    ) else {
        panic!()
    };
    assert_eq!((uid_validity, pairs), (archive.uid_validity, vec![(1, 1), (2, 2)]));
    write(
        &store,
        WriteOp::Copy {
            from: a.mailbox,
            uids: vec![2],
            to: archive.id,
            expunge_source: true,
        },
    );
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.mailbox(bob.id, "Archive").unwrap().unwrap().messages, 3);
    assert_eq!(snap.mailbox(bob.id, "INBOX").unwrap().unwrap().messages, 1);
    let inbox = snap.mailbox_by_id(a.mailbox).unwrap().unwrap();
    assert_eq!(
        snap.expunged_since(&inbox, before).unwrap(),
        modseq::Expunged::Known(vec![2])
    );
    assert_eq!(snap.usage(bob.id).unwrap().messages, 4, "copies count toward usage");
}

#[test]
fn mailbox_lifecycle() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    let user = bob.id;
    write(
        &store,
        WriteOp::CreateMailbox {
            user,
            name: "Work/2026/Q4".into(),
            special_use: None,
        },
    );
    let names = |store: &Store| {
        let mut n: Vec<_> = store
            .snapshot()
            .unwrap()
            .mailboxes(user)
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        n.sort();
        n
    };
    assert!(names(&store).contains(&"Work/2026".to_string()), "superiors created");
    assert!(matches!(
        store.write_blocking(WriteOp::CreateMailbox {
            user,
            name: "Work".into(),
            special_use: None
        }),
        Err(StoreError::MailboxExists)
    ));
    assert!(store
        .write_blocking(WriteOp::CreateMailbox {
            user,
            name: "bad//name".into(),
            special_use: None
        })
        .is_err());
    write(
        &store,
        WriteOp::RenameMailbox {
            user,
            from: "Work".into(),
            to: "Jobs".into(),
        },
    );
    let n = names(&store);
    assert!(
        n.contains(&"Jobs/2026/Q4".to_string()) && !n.iter().any(|x| x.starts_with("Work")),
        "{n:?}"
    );
    write(
        &store,
        WriteOp::DeleteMailbox {
            user,
            name: "Jobs".into(),
        },
    );
    let jobs = store.snapshot().unwrap().mailbox(user, "Jobs").unwrap().unwrap();
    assert!(jobs.noselect, "a parent stays as \\Noselect");
    assert!(store
        .write_blocking(WriteOp::DeleteMailbox {
            user,
            name: "INBOX".into()
        })
        .is_err());
    deliver(&store, &["bob"], b"A: b\r\n\r\n1\r\n");
    write(
        &store,
        WriteOp::RenameMailbox {
            user,
            from: "inbox".into(),
            to: "Old".into(),
        },
    );
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.mailbox(user, "INBOX").unwrap().unwrap().messages, 0);
    assert_eq!(snap.mailbox(user, "Old").unwrap().unwrap().messages, 1);
}

#[test]
fn recent_claims_are_persisted_by_the_writer() {
    let (_dir, store) = store();
    add_user(&store, "bob");
    let a = deliver(&store, &["bob"], b"A: b\r\n\r\n1\r\n")[0]
        .as_ref()
        .copied()
        .unwrap();
    let persisted = || {
        let snap = store.snapshot().unwrap();
        snap.mailbox_by_id(a.mailbox).unwrap().unwrap().first_recent_uid
    };
    assert_eq!(store.recent().claim(a.mailbox, persisted(), 2), 1..2);
    assert!(store.recent().claim(a.mailbox, persisted(), 2).is_empty());
    // With the next commit, or on its own within RECENT_FLUSH.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while persisted() != 2 {
        assert!(std::time::Instant::now() < deadline, "the claim was never persisted");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn metadata_is_all_or_nothing_and_goes_with_its_mailbox() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    let trash = store.snapshot().unwrap().mailbox(bob.id, "Trash").unwrap().unwrap().id;
    let set = |mailbox, entries: Vec<(&str, Option<&[u8]>)>| {
        store.write_blocking(WriteOp::SetMetadata {
            user: bob.id,
            mailbox,
            entries: entries
                .into_iter()
                .map(|(e, v)| (e.to_string(), v.map(<[u8]>::to_vec)))
                .collect(),
        })
    };
    set(
        0,
        vec![("/private/Token", Some(b"abc")), ("/shared/comment", Some(b"\0x"))],
    )
    .unwrap();
    set(trash, vec![("/private/color", Some(b"red"))]).unwrap();
    let read = |mailbox| store.snapshot().unwrap().metadata(bob.id, mailbox).unwrap();
    assert_eq!(
        read(0),
        vec![
            ("/private/Token".to_string(), b"abc".to_vec()),
            ("/shared/comment".to_string(), b"\0x".to_vec())
        ]
    );
    // One value too big: nothing of the request is written.
    let big = vec![b'x'; metadata::MAX_VALUE + 1];
    let refused = set(0, vec![("/private/token", None), ("/private/big", Some(&big))]);
    assert!(matches!(
        refused,
        Err(StoreError::Metadata(metadata::MetadataRefusal::MaxSize(_)))
    ));
    assert_eq!(read(0).len(), 2);
    // Names compare case-insensitively; NIL removes.
    set(0, vec![("/PRIVATE/TOKEN", None)]).unwrap();
    assert_eq!(read(0).len(), 1);
    store
        .write_blocking(WriteOp::DeleteMailbox {
            user: bob.id,
            name: "Trash".into(),
        })
        .unwrap();
    assert!(read(trash).is_empty());
}

#[test]
fn urlauth_keys_are_made_once_reset_and_go_with_their_mailbox() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    let snap = store.snapshot().unwrap();
    let (inbox, trash) = (
        snap.mailbox(bob.id, "INBOX").unwrap().unwrap().id,
        snap.mailbox(bob.id, "Trash").unwrap().unwrap().id,
    );
    drop(snap);
    let keys = |mailboxes: Vec<u64>| match store
        .write_blocking(WriteOp::UrlauthKeys {
            user: bob.id,
            mailboxes,
        })
        .unwrap()
    {
        WriteOutcome::UrlauthKeys(k) => k,
        other => panic!("{other:?}"),
    };
    let read = |mailbox| store.snapshot().unwrap().urlauth_key(bob.id, mailbox).unwrap();
    assert_eq!(read(inbox), None);
    let first = keys(vec![inbox, trash]);
    assert_ne!(first[0], first[1], "one key per mailbox");
    assert_eq!(keys(vec![trash, inbox]), vec![first[1], first[0]], "made once");
    assert_eq!(read(inbox), Some(first[0]));
    let reset = |mailbox| {
        store
            .write_blocking(WriteOp::ResetUrlauthKeys { user: bob.id, mailbox })
            .unwrap()
    };
    reset(Some(inbox));
    assert!(read(inbox).is_some_and(|k| k != first[0]));
    assert_eq!(read(trash), Some(first[1]));
    reset(None);
    assert_eq!((read(inbox), read(trash)), (None, None));
    keys(vec![trash]);
    store
        .write_blocking(WriteOp::DeleteMailbox {
            user: bob.id,
            name: "Trash".into(),
        })
        .unwrap();
    assert_eq!(read(trash), None);
}

/// A mailbox record that still carries the old `subscribed` flag becomes a row of the
/// subscriptions table, once per store: with the step marked done, the store is not read
/// through again at the next start.
#[test]
fn subscription_flags_migrate_once() {
    let (_dir, store) = store();
    let user = add_user(&store, "bob");
    let mark_subscribed = |forget_migration: bool| {
        let t = &store.inner.t;
        let mut txn = store.inner.env.write_txn().unwrap();
        let key = crate::store::records::keys::mailbox_name(user.id, "INBOX");
        let id = u64::from_be_bytes(
            t.mailbox_names.get(&txn, &key).unwrap().unwrap()[..8]
                .try_into()
                .unwrap(),
        );
        let mut mailbox: crate::store::Mailbox = serde_json::from_slice(
            t.mailboxes
                .get(&txn, &crate::store::records::keys::mailbox(id))
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        mailbox.subscribed = true;
        super::txn::put_json(
            &t.mailboxes,
            &mut txn,
            &crate::store::records::keys::mailbox(id),
            &mailbox,
        )
        .unwrap();
        t.subscriptions.delete(&mut txn, &key).unwrap();
        if forget_migration {
            t.meta.delete(&mut txn, b"subscriptions_migrated").unwrap();
        }
        super::migrate(t, &mut txn).unwrap();
        txn.commit().unwrap();
    };
    let subscribed = || {
        store
            .snapshot()
            .unwrap()
            .subscriptions(user.id)
            .unwrap()
            .contains(&"INBOX".into())
    };
    mark_subscribed(true);
    assert!(subscribed(), "migrated into the subscriptions table");
    assert!(
        !store
            .snapshot()
            .unwrap()
            .mailbox(user.id, "INBOX")
            .unwrap()
            .unwrap()
            .subscribed
    );
    mark_subscribed(false);
    assert!(!subscribed(), "a store already migrated is not read through again");
}

#[test]
fn fsck_finds_each_kind_of_damage_and_repairs_it() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    add_user(&store, "carol");
    let big: Vec<u8> = [b"Subject: big\r\n\r\n".as_slice(), &vec![b'x'; 2 * CHUNK_SIZE + 5]].concat();
    let delivered = deliver(&store, &["bob", "carol"], &big);
    deliver(&store, &["bob"], b"Subject: small\r\n\r\nhi\r\n");
    let inbox = delivered[0].as_ref().unwrap().mailbox;
    let trash = store.snapshot().unwrap().mailbox(bob.id, "Trash").unwrap().unwrap().id;
    write(
        &store,
        WriteOp::Copy {
            from: inbox,
            uids: vec![1, 2],
            to: trash,
            expunge_source: false,
        },
    );
    write(
        &store,
        WriteOp::Expunge {
            mailbox: inbox,
            uids: vec![2],
        },
    );
    let clean = store.check().unwrap();
    assert!(clean.is_clean(), "{:?}", clean.findings);
    assert_eq!((clean.users, clean.messages, clean.bodies), (2, 4, 2));

    // Damage of each kind, as a crash of a buggy writer could leave it.
    let t = &store.inner.t;
    let snap = store.snapshot().unwrap();
    let first = snap.message(inbox, 1).unwrap().unwrap();
    let small = snap.message(trash, 2).unwrap().unwrap();
    drop(snap);
    let mut txn = store.inner.env.write_txn().unwrap();
    let mut mailbox = read::get_mailbox(t, &txn, inbox).unwrap().unwrap();
    mailbox.uid_next = 1;
    mailbox.highest_modseq = 1;
    mailbox.messages = 7;
    txn::put_json(&t.mailboxes, &mut txn, &records::keys::mailbox(inbox), &mailbox).unwrap();
    t.usage
        .put(
            &mut txn,
            &records::keys::user_id(bob.id),
            &records::Usage::default().encode(),
        )
        .unwrap();
    t.body_refs
        .put(&mut txn, &first.body_id.to_be_bytes(), &9u32.to_be_bytes())
        .unwrap();
    // The small body vanishes under its message in Trash.
    t.body_refs.delete(&mut txn, &small.body_id.to_be_bytes()).unwrap();
    // An orphan body and orphan queued bytes.
    t.bodies.put(&mut txn, &records::keys::chunk(999, 0), b"lost").unwrap();
    t.queue_bodies
        .put(&mut txn, &records::keys::chunk(77, 0), b"lost")
        .unwrap();
    txn.commit().unwrap();

    let damaged = store.check().unwrap();
    let text: Vec<String> = damaged.findings.iter().map(|f| f.to_string()).collect();
    for expected in [
        "UIDNEXT 1 is not above UID 1",
        "HIGHESTMODSEQ 1 is below",
        "counts 7 messages",
        "user bob: usage is 0 messages",
        "counted 9 references, has 3",
        &format!("message 2 of mailbox {trash}: its body {} is missing", small.body_id),
        "body 999: stored without a reference count",
        "queued bytes 77: no queue entry",
    ] {
        assert!(text.iter().any(|t| t.contains(expected)), "{expected} not in {text:#?}");
    }
    assert_eq!(damaged.repairable(), damaged.findings.len());

    match write(&store, WriteOp::Repair) {
        WriteOutcome::Repaired { repaired, .. } => assert_eq!(repaired, damaged.findings.len()),
        other => panic!("{other:?}"),
    }
    let repaired = store.check().unwrap();
    assert!(repaired.is_clean(), "{:?}", repaired.findings);
    let snap = store.snapshot().unwrap();
    let mailbox = snap.mailbox_by_id(inbox).unwrap().unwrap();
    assert!(mailbox.uid_next > 1 && mailbox.highest_modseq > 1 && mailbox.messages == 1);
    assert_eq!(
        snap.message(trash, 2).unwrap(),
        None,
        "the message without a body is gone"
    );
    assert_eq!(body_of(&store, &bob, 1).unwrap(), big, "what was whole is untouched");
}

fn large_message() -> Vec<u8> {
    let mut body = b"Subject: large\r\n\r\n".to_vec();
    // Past the staging threshold, and not a whole number of staging steps.
    body.extend_from_slice(&b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n".repeat(150_001));
    body
}

fn chunks_in(store: &Store, table: &Table) -> usize {
    let txn = store.inner.env.read_txn().unwrap();
    table.len(&txn).unwrap() as usize
}

/// Pages in overflow runs (values of their own) in the bodies table.
fn body_pages(store: &Store) -> u64 {
    let txn = store.inner.env.read_txn().unwrap();
    store.inner.t.bodies.stat(&txn).unwrap().overflow_pages as u64
}

#[test]
fn a_body_just_over_a_page_takes_one_page_and_reads_back_whole() {
    let (_dir, store) = store();
    let alice = add_user(&store, "alice");
    let message = |len: usize| [b"Subject: x\r\n\r\n".as_slice(), &vec![b'y'; len - 15]].concat();
    let (small, larger) = (message(4200), message(7000));
    deliver(&store, &["alice"], &small);
    assert_eq!(body_pages(&store), 1, "4,080 bytes in a page, 120 in a leaf");
    deliver(&store, &["alice"], &larger);
    assert_eq!(body_pages(&store), 3, "7,000 bytes take two pages either way");
    assert_eq!(body_of(&store, &alice, 1).unwrap(), small);
    assert_eq!(body_of(&store, &alice, 2).unwrap(), larger);
    let report = store.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
}

#[test]
fn new_bodies_fill_their_leaf_pages() {
    let (_dir, store) = store();
    add_user(&store, "alice");
    // Bodies small enough to lie in leaf pages: three fit a page. Split in half each time
    // the last page fills, the pages would hold two each (150 pages).
    for n in 0..300 {
        deliver(
            &store,
            &["alice"],
            format!("Subject: {n:04}\r\n\r\n{}", "z".repeat(1000)).as_bytes(),
        );
    }
    let txn = store.inner.env.read_txn().unwrap();
    let stat = store.inner.t.bodies.stat(&txn).unwrap();
    assert_eq!(stat.overflow_pages, 0);
    assert!(stat.leaf_pages <= 105, "{stat:?}");
}

#[test]
fn a_key_below_the_last_is_put_all_the_same() {
    let (_dir, store) = store();
    let table = store.inner.t.bodies;
    let mut txn = store.inner.env.write_txn().unwrap();
    for key in [5u64, 9, 3, 7] {
        super::txn::put_last(&table, &mut txn, &key.to_be_bytes(), &key.to_le_bytes()).unwrap();
    }
    txn.commit().unwrap();
    let txn = store.inner.env.read_txn().unwrap();
    let keys: Vec<u64> = table
        .iter(&txn)
        .unwrap()
        .map(|kv| u64::from_be_bytes(kv.unwrap().0.try_into().unwrap()))
        .collect();
    assert_eq!(keys, [3, 5, 7, 9]);
}

#[test]
fn the_writer_keeps_room_written_ahead_of_the_last_page() {
    let (_dir, store) = store();
    add_user(&store, "alice");
    for _ in 0..20 {
        let results = deliver(
            &store,
            &["alice"],
            &[b"Subject: x\r\n\r\n".as_slice(), &[b'y'; 8000]].concat(),
        );
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }
    // After each batch the writer made room (a step at least, since there was none) before
    // it took the next request.
    store.write_blocking(WriteOp::Flush).unwrap();
    let space = store.space().unwrap();
    assert!(
        space.file_bytes >= space.pages * space.page_size + (64 << 10),
        "{space:?}"
    );
    assert!(store.check().unwrap().is_clean());
}

#[test]
fn a_large_body_is_staged_then_linked_once_for_every_recipient() {
    let (_dir, store) = store();
    let (alice, bob) = (add_user(&store, "alice"), add_user(&store, "bob"));
    let body = large_message();
    let (commits, txns) = (store.commits(), store.inner.env.info().last_txn_id);
    let results = deliver(&store, &["alice", "bob"], &body);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(body_of(&store, &alice, 1).unwrap(), body);
    assert_eq!(body_of(&store, &bob, 1).unwrap(), body);
    assert_eq!(
        chunks_in(&store, &store.inner.t.bodies),
        super::txn::pieces(&body, store.inner.t.page_size).count()
    );
    // The body went in commits of its own (three steps), ahead of the delivery's one batch.
    assert_eq!(store.commits(), commits + 1);
    assert_eq!(store.inner.env.info().last_txn_id, txns + 4);
    let report = store.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    let txn = store.inner.env.read_txn().unwrap();
    assert_eq!(store.inner.t.meta.prefix_iter(&txn, b"staged/").unwrap().count(), 0);
}

#[test]
fn a_staged_body_nobody_takes_is_removed_with_its_mark() {
    let (_dir, store) = store();
    add_user(&store, "alice");
    let results = deliver(&store, &["nobody"], &large_message());
    assert!(matches!(results[..], [Err(StoreError::NoSuchUser(_))]));
    assert_eq!(chunks_in(&store, &store.inner.t.bodies), 0);
    assert!(store.check().unwrap().is_clean());
}

#[test]
fn what_a_crash_left_staged_is_swept() {
    let (_dir, store) = store();
    add_user(&store, "alice");
    let (message, structure) = crate::mime::ingest(large_message()).unwrap();
    let op = WriteOp::Deliver {
        message: message.into(),
        structure: Arc::new(structure),
        recipients: vec![Recipient {
            user: "alice".into(),
            mailbox: "INBOX".into(),
        }],
    };
    // Staged, and then the process "dies" before the delivery's own commit.
    let staged = stage::stage(&store.inner, &op).unwrap();
    assert!(staged.body.is_some());
    assert!(chunks_in(&store, &store.inner.t.bodies) > 0);
    let mut txn = store.inner.env.write_txn().unwrap();
    assert_eq!(stage::sweep(&store.inner.t, &mut txn).unwrap(), 1);
    txn.commit().unwrap();
    assert_eq!(chunks_in(&store, &store.inner.t.bodies), 0);
    assert!(store.check().unwrap().is_clean());
}

/// Where the child of the next test finds the store it stages into.
const STAGING_CHILD: &str = "RINGMAIL_TEST_STAGING_CHILD";

/// A command opening the store while a server is in the middle of staging a large body (the
/// server here being another process) leaves that staging alone; `Store::open` would have
/// swept it as a crash's leftovers and deleted the chunks the server is about to link.
#[test]
fn opening_beside_a_server_leaves_its_staging_in_progress_alone() {
    if let Ok(dir) = std::env::var(STAGING_CHILD) {
        // The "server": stages a body, says so, and waits to be killed.
        let store = Store::open(std::path::Path::new(&dir)).unwrap();
        add_user(&store, "alice");
        let (message, structure) = crate::mime::ingest(large_message()).unwrap();
        let op = WriteOp::Deliver {
            message: message.into(),
            structure: Arc::new(structure),
            recipients: vec![Recipient {
                user: "alice".into(),
                mailbox: "INBOX".into(),
            }],
        };
        assert!(stage::stage(&store.inner, &op).unwrap().body.is_some());
        println!("staged");
        std::thread::sleep(std::time::Duration::from_secs(60));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::tests::opening_beside_a_server_leaves_its_staging_in_progress_alone",
        ])
        .args(["--nocapture", "--test-threads=1"])
        .env(STAGING_CHILD, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("staged"))),
        "the child did not stage"
    );
    let store = Store::open_beside_server(dir.path()).unwrap();
    let marks = {
        let txn = store.inner.env.read_txn().unwrap();
        store.inner.t.meta.prefix_iter(&txn, b"staged/").unwrap().count()
    };
    let chunks = chunks_in(&store, &store.inner.t.bodies);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(marks, 1, "the server's staging mark is still there");
    assert!(chunks > 0, "and so are its chunks");
}

fn index_keys(store: &Store, mailbox: records::MailboxId) -> Vec<(u64, u32)> {
    let txn = store.inner.env.read_txn().unwrap();
    let (start, end) = (
        records::keys::modseq(mailbox, 0, 0),
        records::keys::modseq(mailbox, u64::MAX, u32::MAX),
    );
    let range = txn::inclusive(&start, &end);
    let keys = store.inner.t.modseqs.range(&txn, &range).unwrap();
    keys.map(|item| {
        let key = item.unwrap().0;
        records::keys::modseq_entry(key).unwrap()
    })
    .collect()
}

fn flag(store: &Store, mailbox: records::MailboxId, uids: Vec<u32>) {
    write(
        store,
        WriteOp::StoreFlags {
            mailbox,
            uids,
            mode: FlagMode::Add,
            flags: records::flags::FLAGGED,
            keywords: Vec::new(),
            unchanged_since: None,
        },
    );
}

/// Issue 13: CHANGEDSINCE, SEARCH MODSEQ and QRESYNC read the modseq index, which must name
/// every message once, under its current modseq, through every kind of change.
#[test]
fn the_modseq_index_follows_every_change() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    for i in 1..=4 {
        deliver(&store, &["bob"], format!("A: b\r\n\r\n{i}\r\n").as_bytes());
    }
    let snap = store.snapshot().unwrap();
    let inbox = snap.mailbox(bob.id, "INBOX").unwrap().unwrap();
    let archive = snap.mailbox(bob.id, "Archive").unwrap().unwrap();
    drop(snap);
    let after_delivery = inbox.highest_modseq;
    assert_eq!(index_keys(&store, inbox.id).len(), 4);
    flag(&store, inbox.id, vec![3]);
    write(
        &store,
        WriteOp::Expunge {
            mailbox: inbox.id,
            uids: vec![1],
        },
    );
    write(
        &store,
        WriteOp::Copy {
            from: inbox.id,
            uids: vec![2],
            to: archive.id,
            expunge_source: true,
        },
    );
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.changed_since(inbox.id, after_delivery).unwrap(), vec![3]);
    assert_eq!(snap.changed_since(inbox.id, 0).unwrap(), vec![3, 4]);
    assert_eq!(snap.changed_since(inbox.id, u64::MAX).unwrap(), Vec::<u32>::new());
    assert_eq!(snap.changed_since(archive.id, 0).unwrap(), vec![1]);
    // Each key carries its record's modseq.
    for (modseq, uid) in index_keys(&store, inbox.id) {
        assert_eq!(snap.message(inbox.id, uid).unwrap().unwrap().modseq, modseq);
    }
    drop(snap);
    assert!(store.check().unwrap().is_clean());
    write(
        &store,
        WriteOp::DeleteMailbox {
            user: bob.id,
            name: "Archive".into(),
        },
    );
    assert!(
        index_keys(&store, archive.id).is_empty(),
        "a deleted mailbox leaves no keys"
    );
    write(&store, WriteOp::DeleteUser { name: "bob".into() });
    assert!(index_keys(&store, inbox.id).is_empty(), "nor does a deleted user");
    assert_eq!(chunks_in(&store, &store.inner.t.expunged), 0, "nor expunge log entries");
}

#[test]
fn the_expunge_log_forgets_its_oldest_entries_past_its_bound() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    let keep = modseq::EXPUNGE_LOG_KEEP;
    for i in 0..=keep + 2 {
        deliver(&store, &["bob"], format!("A: b\r\n\r\n{i}\r\n").as_bytes());
    }
    let inbox = store.snapshot().unwrap().mailbox(bob.id, "INBOX").unwrap().unwrap();
    let mut modseqs = vec![inbox.highest_modseq];
    for uid in 1..=keep + 1 {
        write(
            &store,
            WriteOp::Expunge {
                mailbox: inbox.id,
                uids: vec![uid],
            },
        );
        modseqs.push(
            store
                .snapshot()
                .unwrap()
                .mailbox_by_id(inbox.id)
                .unwrap()
                .unwrap()
                .highest_modseq,
        );
    }
    let snap = store.snapshot().unwrap();
    let inbox = snap.mailbox_by_id(inbox.id).unwrap().unwrap();
    assert!(inbox.expunge_log <= keep && inbox.expunge_floor > 0, "{inbox:?}");
    // Below the floor the log says so rather than give a short list...
    assert_eq!(
        snap.expunged_since(&inbox, modseqs[0]).unwrap(),
        modseq::Expunged::Forgotten
    );
    assert_eq!(
        snap.expunged_since(&inbox, inbox.expunge_floor - 1).unwrap(),
        modseq::Expunged::Forgotten
    );
    // ...and from the floor up it knows every expunge.
    let known = |since| match snap.expunged_since(&inbox, since).unwrap() {
        modseq::Expunged::Known(uids) => uids,
        modseq::Expunged::Forgotten => panic!("forgot expunges after {since}"),
    };
    let floor_at = modseqs.iter().position(|&m| m == inbox.expunge_floor).unwrap() as u32;
    assert_eq!(
        known(inbox.expunge_floor),
        (floor_at + 1..=keep + 1).collect::<Vec<_>>()
    );
    assert_eq!(known(*modseqs.last().unwrap()), Vec::<u32>::new());
    assert_eq!(inbox.expunge_log, keep + 1 - floor_at);
}

#[test]
fn a_store_from_before_the_modseq_index_is_indexed_when_it_opens() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    for i in 1..=3 {
        deliver(&store, &["bob"], format!("A: b\r\n\r\n{i}\r\n").as_bytes());
    }
    let inbox = store.snapshot().unwrap().mailbox(bob.id, "INBOX").unwrap().unwrap();
    flag(&store, inbox.id, vec![2]);
    write(
        &store,
        WriteOp::Expunge {
            mailbox: inbox.id,
            uids: vec![1],
        },
    );
    let indexed = index_keys(&store, inbox.id);
    // As an older version left it: no index, no count of log entries, not migrated.
    let t = &store.inner.t;
    let mut txn = store.inner.env.write_txn().unwrap();
    t.modseqs.clear(&mut txn).unwrap();
    let mut record = read::get_mailbox(t, &txn, inbox.id).unwrap().unwrap();
    record.expunge_log = 0;
    txn::put_json(&t.mailboxes, &mut txn, &records::keys::mailbox(inbox.id), &record).unwrap();
    t.meta.delete(&mut txn, b"modseqs_indexed").unwrap();
    txn.commit().unwrap();
    assert!(!store.check().unwrap().is_clean(), "fsck sees the missing index");
    let mut txn = store.inner.env.write_txn().unwrap();
    migrate(t, &mut txn).unwrap();
    txn.commit().unwrap();
    assert_eq!(index_keys(&store, inbox.id), indexed);
    let record = store.snapshot().unwrap().mailbox_by_id(inbox.id).unwrap().unwrap();
    assert_eq!(record.expunge_log, 1);
    assert!(store.check().unwrap().is_clean());
}

#[test]
fn fsck_repairs_a_modseq_index_that_disagrees_with_its_records() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    for i in 1..=3 {
        deliver(&store, &["bob"], format!("A: b\r\n\r\n{i}\r\n").as_bytes());
    }
    let snap = store.snapshot().unwrap();
    let inbox = snap.mailbox(bob.id, "INBOX").unwrap().unwrap();
    let record = snap.message(inbox.id, 2).unwrap().unwrap();
    drop(snap);
    let indexed = index_keys(&store, inbox.id);
    let t = &store.inner.t;
    let mut txn = store.inner.env.write_txn().unwrap();
    // UID 2 under a stale modseq, and a UID that does not exist.
    t.modseqs
        .delete(&mut txn, &records::keys::modseq(inbox.id, record.modseq, 2))
        .unwrap();
    t.modseqs
        .put(&mut txn, &records::keys::modseq(inbox.id, 1, 2), &[])
        .unwrap();
    t.modseqs
        .put(&mut txn, &records::keys::modseq(inbox.id + 1, 5, 9), &[])
        .unwrap();
    txn.commit().unwrap();
    let damaged = store.check().unwrap();
    let text: Vec<String> = damaged.findings.iter().map(|f| f.to_string()).collect();
    assert_eq!(text.len(), 2, "{text:#?}");
    assert!(
        text[0].contains(&format!("modseq {} is not indexed", record.modseq)),
        "{text:#?}"
    );
    assert!(text[1].contains("the modseq index has UID 9 at modseq 5"), "{text:#?}");
    match write(&store, WriteOp::Repair) {
        WriteOutcome::Repaired { repaired, .. } => assert_eq!(repaired, 2),
        other => panic!("{other:?}"),
    }
    assert!(store.check().unwrap().is_clean());
    assert_eq!(index_keys(&store, inbox.id), indexed);
}

/// The unseen index's UIDs of `mailbox`, as SELECT reads them.
fn unseen_uids(store: &Store, mailbox: records::MailboxId) -> Vec<u32> {
    let mut uids = Vec::new();
    store
        .snapshot()
        .unwrap()
        .each_unseen(mailbox, &mut |uid| {
            uids.push(uid);
            true
        })
        .unwrap();
    uids
}

fn set_flags(
    store: &Store,
    mailbox: records::MailboxId,
    uids: Vec<u32>,
    (mode, flags): (FlagMode, u8),
    keywords: &[&str],
) {
    write(
        store,
        WriteOp::StoreFlags {
            mailbox,
            uids,
            mode,
            flags,
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            unchanged_since: None,
        },
    );
}

/// What `mailbox`'s records say: its unseen UIDs and its counts by flag.
fn counted(store: &Store, mailbox: records::MailboxId) -> (Vec<u32>, records::FlagCounts) {
    let snap = store.snapshot().unwrap();
    let (mut unseen, mut counts) = (Vec::new(), records::FlagCounts::default());
    for item in snap.messages(mailbox).unwrap() {
        let (uid, record) = item.unwrap();
        if record.flags & records::flags::SEEN == 0 {
            unseen.push(uid);
        }
        counts.add(&record);
    }
    (unseen, counts)
}

/// SELECT and STATUS read the unseen index and the mailbox's counts by flag instead of its
/// messages: both must say what the records say, through every kind of change.
#[test]
fn the_unseen_index_and_the_counts_by_flag_follow_every_change() {
    use records::flags::{DELETED, SEEN};
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    for i in 1..=4 {
        deliver(&store, &["bob"], format!("A: b\r\n\r\n{i}\r\n").as_bytes());
    }
    let snap = store.snapshot().unwrap();
    let inbox = snap.mailbox(bob.id, "INBOX").unwrap().unwrap();
    let archive = snap.mailbox(bob.id, "Archive").unwrap().unwrap();
    drop(snap);
    let agrees = |mailbox: records::MailboxId| {
        let (unseen, counts) = counted(&store, mailbox);
        let record = store.snapshot().unwrap().mailbox_by_id(mailbox).unwrap().unwrap();
        assert_eq!(unseen_uids(&store, mailbox), unseen);
        assert!(
            record.flag_counts.agrees(&counts),
            "{:?} against {counts:?}",
            record.flag_counts
        );
        record.flag_counts
    };
    assert_eq!(agrees(inbox.id).unseen, 4);
    set_flags(&store, inbox.id, vec![1, 2], (FlagMode::Add, SEEN), &[]);
    set_flags(&store, inbox.id, vec![2, 3], (FlagMode::Add, 0), &["$Work"]);
    // Keywords are one whatever their case (RFC 9051 §2.3.2).
    set_flags(&store, inbox.id, vec![4], (FlagMode::Add, 0), &["$work"]);
    set_flags(&store, inbox.id, vec![3], (FlagMode::Add, DELETED), &[]);
    let counts = agrees(inbox.id);
    assert_eq!((counts.unseen, counts.deleted), (2, 1));
    assert_eq!(counts.keywords, vec![("$Work".to_string(), 3)]);
    write(
        &store,
        WriteOp::Expunge {
            mailbox: inbox.id,
            uids: vec![2],
        },
    );
    write(
        &store,
        WriteOp::Copy {
            from: inbox.id,
            uids: vec![3],
            to: archive.id,
            expunge_source: true,
        },
    );
    let counts = agrees(inbox.id);
    assert_eq!(
        (counts.unseen, counts.deleted, counts.keywords()),
        (1, 0, vec!["$Work".to_string()])
    );
    assert_eq!(unseen_uids(&store, inbox.id), vec![4]);
    let moved = agrees(archive.id);
    assert_eq!((moved.unseen, moved.deleted, moved.keywords.len()), (1, 1, 1));
    // A keyword on no message any more is no longer in use.
    set_flags(&store, inbox.id, vec![4], (FlagMode::Remove, 0), &["$WORK"]);
    set_flags(&store, inbox.id, vec![1], (FlagMode::Replace, 0), &[]);
    let counts = agrees(inbox.id);
    assert_eq!((counts.unseen, counts.keywords.len()), (2, 0));
    assert_eq!(unseen_uids(&store, inbox.id), vec![1, 4]);
    assert!(store.check().unwrap().is_clean());
    write(
        &store,
        WriteOp::DeleteMailbox {
            user: bob.id,
            name: "Archive".into(),
        },
    );
    assert!(
        unseen_uids(&store, archive.id).is_empty(),
        "a deleted mailbox leaves no keys"
    );
    write(&store, WriteOp::DeleteUser { name: "bob".into() });
    assert_eq!(chunks_in(&store, &store.inner.t.unseen), 0, "nor does a deleted user");
}

#[test]
fn a_store_from_before_the_counts_by_flag_is_counted_when_it_opens() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    for i in 1..=3 {
        deliver(&store, &["bob"], format!("A: b\r\n\r\n{i}\r\n").as_bytes());
    }
    let inbox = store.snapshot().unwrap().mailbox(bob.id, "INBOX").unwrap().unwrap();
    set_flags(
        &store,
        inbox.id,
        vec![2],
        (FlagMode::Add, records::flags::SEEN),
        &["Later"],
    );
    let before = store.snapshot().unwrap().mailbox_by_id(inbox.id).unwrap().unwrap();
    // As an older version left it: no index, no counts, not migrated.
    let t = &store.inner.t;
    let mut txn = store.inner.env.write_txn().unwrap();
    t.unseen.clear(&mut txn).unwrap();
    let mut record = read::get_mailbox(t, &txn, inbox.id).unwrap().unwrap();
    record.flag_counts = records::FlagCounts::default();
    txn::put_json(&t.mailboxes, &mut txn, &records::keys::mailbox(inbox.id), &record).unwrap();
    t.meta.delete(&mut txn, b"flags_counted").unwrap();
    txn.commit().unwrap();
    assert!(!store.check().unwrap().is_clean(), "fsck sees the missing counts");
    let mut txn = store.inner.env.write_txn().unwrap();
    migrate(t, &mut txn).unwrap();
    txn.commit().unwrap();
    assert_eq!(unseen_uids(&store, inbox.id), vec![1, 3]);
    let after = store.snapshot().unwrap().mailbox_by_id(inbox.id).unwrap().unwrap();
    assert_eq!(after.flag_counts, before.flag_counts);
    assert!(store.check().unwrap().is_clean());
}

#[test]
fn fsck_repairs_an_unseen_index_and_counts_that_disagree_with_the_records() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    for i in 1..=3 {
        deliver(&store, &["bob"], format!("A: b\r\n\r\n{i}\r\n").as_bytes());
    }
    let inbox = store.snapshot().unwrap().mailbox(bob.id, "INBOX").unwrap().unwrap();
    set_flags(&store, inbox.id, vec![3], (FlagMode::Add, records::flags::SEEN), &[]);
    let t = &store.inner.t;
    // UID 1 missing from the index, seen UID 3 and a UID of no mailbox in it.
    let mut txn = store.inner.env.write_txn().unwrap();
    t.unseen.delete(&mut txn, &records::keys::message(inbox.id, 1)).unwrap();
    t.unseen
        .put(&mut txn, &records::keys::message(inbox.id, 3), &[])
        .unwrap();
    t.unseen
        .put(&mut txn, &records::keys::message(inbox.id + 7, 9), &[])
        .unwrap();
    txn.commit().unwrap();
    let damaged = store.check().unwrap();
    let text: Vec<String> = damaged.findings.iter().map(|f| f.to_string()).collect();
    assert_eq!(text.len(), 2, "{text:#?}");
    assert!(text[0].contains("message 1 of mailbox"), "{text:#?}");
    assert!(text[1].contains("the unseen index has UID 9"), "{text:#?}");
    match write(&store, WriteOp::Repair) {
        WriteOutcome::Repaired { repaired, .. } => assert_eq!(repaired, 2),
        other => panic!("{other:?}"),
    }
    assert!(store.check().unwrap().is_clean());
    assert_eq!(unseen_uids(&store, inbox.id), vec![1, 2]);
    // Counts that are wrong are counted again.
    let mut txn = store.inner.env.write_txn().unwrap();
    let mut record = read::get_mailbox(t, &txn, inbox.id).unwrap().unwrap();
    record.flag_counts.unseen = 9;
    txn::put_json(&t.mailboxes, &mut txn, &records::keys::mailbox(inbox.id), &record).unwrap();
    txn.commit().unwrap();
    let damaged = store.check().unwrap();
    assert_eq!(damaged.findings.len(), 1, "{:?}", damaged.findings);
    write(&store, WriteOp::Repair);
    assert!(store.check().unwrap().is_clean());
    assert_eq!(
        store
            .snapshot()
            .unwrap()
            .mailbox_by_id(inbox.id)
            .unwrap()
            .unwrap()
            .flag_counts
            .unseen,
        2
    );
}

/// A message with `n` lines starting with '.' among 1,000 bytes of lines each.
fn dotted(n: usize) -> Vec<u8> {
    let lines = [b".dot\r\n".as_slice(), &b"a line of text, not short\r\n".repeat(36)].concat();
    [b"Subject: dots\r\n\r\n".as_slice(), &lines.repeat(n)].concat()
}

/// The body's dot-line index as POP3 reads it.
fn dot_lines_of(store: &Store, user: &User, uid: u32) -> Option<Vec<u32>> {
    let snap = store.snapshot().unwrap();
    let inbox = snap.mailbox(user.id, "inbox").unwrap().unwrap();
    let body = snap.message(inbox.id, uid).unwrap().unwrap().body_id;
    store.mapped_snapshot().unwrap().dot_lines(body).unwrap()
}

#[test]
fn dot_lines_are_indexed_with_the_body_and_go_with_it() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    // Small, and staged (written ahead in chunks): the index covers every chunk.
    let small = dotted(4);
    let large = dotted(stage::STAGE_AT / 900);
    deliver(&store, &["bob"], &small);
    deliver(&store, &["bob"], &large);
    deliver(&store, &["bob"], b"Subject: none\r\n\r\nno. dots. here\r\n");
    assert_eq!(dot_lines_of(&store, &bob, 1), Some(dot_lines::offsets(&small)));
    assert_eq!(dot_lines_of(&store, &bob, 2), Some(dot_lines::offsets(&large)));
    assert_eq!(dot_lines_of(&store, &bob, 3), None);
    assert!(store.check().unwrap().is_clean());

    let inbox = store.snapshot().unwrap().mailbox(bob.id, "INBOX").unwrap().unwrap();
    write(
        &store,
        WriteOp::Expunge {
            mailbox: inbox.id,
            uids: vec![1, 2],
        },
    );
    let txn = store.inner.env.read_txn().unwrap();
    assert_eq!(
        store.inner.t.dot_lines.len(&txn).unwrap(),
        0,
        "the indexes went with their bodies"
    );
}

#[test]
fn fsck_drops_a_dot_line_index_that_does_not_match_its_body() {
    let (_d, store) = store();
    let bob = add_user(&store, "bob");
    let message = dotted(4);
    deliver(&store, &["bob"], &message);
    let snap = store.snapshot().unwrap();
    let inbox = snap.mailbox(bob.id, "INBOX").unwrap().unwrap();
    let body = snap.message(inbox.id, 1).unwrap().unwrap().body_id;
    drop(snap);
    let t = &store.inner.t;
    let mut txn = store.inner.env.write_txn().unwrap();
    // One dot missing from the index, and an index for a body that does not exist.
    let mut short = dot_lines::encode(&message).unwrap();
    short.truncate(short.len() - 4);
    t.dot_lines.put(&mut txn, &body.to_be_bytes(), &short).unwrap();
    t.dot_lines.put(&mut txn, &(body + 7).to_be_bytes(), &short).unwrap();
    txn.commit().unwrap();
    let damaged = store.check().unwrap();
    let text: Vec<String> = damaged.findings.iter().map(|f| f.to_string()).collect();
    assert_eq!(text.len(), 2, "{text:#?}");
    assert!(text[0].contains("does not match its bytes"), "{text:#?}");
    assert!(
        text[1].contains(&format!("body {}: stored without a reference count", body + 7)),
        "{text:#?}"
    );
    match write(&store, WriteOp::Repair) {
        WriteOutcome::Repaired { repaired, .. } => assert_eq!(repaired, 2),
        other => panic!("{other:?}"),
    }
    assert!(store.check().unwrap().is_clean());
    assert_eq!(dot_lines_of(&store, &bob, 1), None, "POP3 scans the body again");
}
