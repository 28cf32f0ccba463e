//! Store tests on a real LMDB environment in a temporary directory.

use std::sync::Arc;

use super::*;
use crate::auth::scram::ScramCredentials;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn add_user(store: &Store, name: &str) -> User {
    let op = WriteOp::AddUser(NewUser {
        name: name.into(),
        password_hash: "x".into(),
        scram: ScramCredentials::derive("pw", b"salt", 4096).unwrap(),
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
