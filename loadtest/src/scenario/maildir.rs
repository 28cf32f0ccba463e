//! `maildir`: the mail `seed` delivers, written straight into one Maildir per user, for sizes
//! that delivery over LMTP would take an hour to seed (issue 14's 1,500 INBOXes of 1,000
//! messages). Dovecot reads the files where they lie and `ringmail import` takes them in, so
//! both servers start from the same messages. Message `i` goes to user `i % user-count`,
//! with the bytes `seed` would send it, into `cur/` with no flags (neither seen nor recent).

use std::fs;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;

use super::deliver::Mail;
use super::user_name;
use loadtest::message::generate;

#[derive(Args, Debug)]
pub struct MaildirArgs {
    /// Each user's Maildir; `%d` becomes 0..user-count. Made if missing.
    #[arg(long)]
    dir: String,
    #[command(flatten)]
    mail: Mail,
}

pub fn write(args: &MaildirArgs) -> anyhow::Result<()> {
    let mail = &args.mail;
    if mail.user_count == 0 {
        bail!("--user-count must be at least 1");
    }
    let started = Instant::now();
    let dirs: Vec<PathBuf> = (0..mail.user_count)
        .map(|user| PathBuf::from(user_name(&args.dir, user)))
        .collect();
    for dir in &dirs {
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(dir.join(sub)).with_context(|| format!("making {}", dir.display()))?;
        }
    }
    // A Maildir file's name is unique by the time, the process and a number of its own
    // (the message's), as maildir(5) has them made.
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let pid = std::process::id();
    let mut bytes = 0;
    for index in 0..mail.messages {
        let (user, spec) = mail.message(index);
        let message = generate(&spec);
        let name = format!("{secs}.M{index}P{pid}.loadtest,S={}:2,", message.len());
        let path = dirs[user as usize].join("cur").join(name);
        fs::write(&path, &message).with_context(|| format!("writing {}", path.display()))?;
        bytes += message.len() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "wrote {} messages ({:.1} MiB) into {} Maildirs in {seconds:.1} s",
        mail.messages,
        bytes as f64 / (1 << 20) as f64,
        mail.user_count
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadtest::message::MessageSpec;

    /// Message `i` lies in user `i % user-count`'s `cur/`, with the bytes `seed` would deliver
    /// to that user.
    #[test]
    fn messages_are_spread_round_robin_with_seeds_bytes() {
        let root = std::env::temp_dir().join(format!("loadtest-maildir-{}", std::process::id()));
        let args = MaildirArgs {
            dir: format!("{}/u%d/Maildir", root.display()),
            mail: Mail {
                users: "user%d".into(),
                user_count: 3,
                messages: 7,
                size: 1500,
                from: "loadtest@example.org".into(),
            },
        };
        write(&args).unwrap();
        for user in 0..3u64 {
            let cur = root.join(format!("u{user}/Maildir/cur"));
            let mut files: Vec<(u64, Vec<u8>)> = fs::read_dir(&cur)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let name = e.file_name().into_string().unwrap();
                    let index = name.split(".M").nth(1).unwrap().split('P').next().unwrap();
                    (index.parse().unwrap(), fs::read(e.path()).unwrap())
                })
                .collect();
            files.sort();
            let want: Vec<u64> = (0..7).filter(|i| i % 3 == user).collect();
            assert_eq!(files.iter().map(|f| f.0).collect::<Vec<_>>(), want);
            for (index, bytes) in files {
                let spec = MessageSpec {
                    index,
                    size: 1500,
                    from: "loadtest@example.org".into(),
                    to: format!("user{user}@example.org"),
                };
                assert_eq!(bytes, generate(&spec), "message {index}");
            }
            assert!(fs::read_dir(root.join(format!("u{user}/Maildir/new"))).is_ok());
        }
        fs::remove_dir_all(&root).unwrap();
    }
}
