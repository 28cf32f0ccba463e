//! THREAD (RFC 5256 §3): the ORDEREDSUBJECT and REFERENCES algorithms, and the `* THREAD`
//! response (RFC 5256 §4).
//!
//! Owns how a set of messages (already matched by the search key) becomes threads. Pure: no
//! store, socket or clock. Never panics and never recurses: the trees are an arena of
//! containers walked with explicit stacks, and a [`Thread`] is flat, so neither a References
//! chain of any length nor a thread of any depth can exhaust the stack, even when dropped.
//! What RFC 5256 §3 says about bad input is followed: a message without a valid Message-ID, and
//! every message after the first (by sequence number) with a given Message-ID, gets a unique one;
//! References without a valid msg-id give way to In-Reply-To; a reference to an absent message
//! creates a dummy; a link that would close a loop is not made (found by walking up from the
//! would-be parent, which is needed only when the would-be child has children of its own), and
//! a message whose own parent link would close one is left a root, not under a parent someone
//! else's References guessed for it.
//! Message-IDs compare case-sensitively, subjects under i;unicode-casemap.

use std::collections::HashMap;

use super::format;
use super::sort::{sent_date, subject_key, SortCandidate};
use super::types::ThreadAlgorithm;

/// One thread, flattened in pre-order: each node is followed by its children's subtrees, in
/// order. `nodes[0]` is the thread's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub nodes: Vec<ThreadNode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadNode {
    /// The message's UID or sequence number; `None` for a dummy: a message only referred to,
    /// which REFERENCES keeps at the top of a thread to hold its children together.
    pub number: Option<u32>,
    /// How many children it has: the subtrees that follow it.
    pub children: u32,
}

/// Threads the candidates with `algorithm`; the numbers are UIDs (`uid`) or sequence numbers.
pub fn thread_messages(algorithm: ThreadAlgorithm, uid: bool, candidates: &[SortCandidate<'_>]) -> Vec<Thread> {
    let mut threader = Threader::new(algorithm, uid);
    for c in candidates {
        threader.push(c);
    }
    threader.finish()
}

/// THREAD one message at a time, for a caller that sees each message only briefly: `push`
/// keeps what threading needs, not the structure.
#[derive(Debug)]
pub struct Threader {
    algorithm: ThreadAlgorithm,
    uid: bool,
    messages: Vec<Message>,
}

/// What threading needs of one message.
#[derive(Debug)]
struct Message {
    seq: u32,
    number: u32,
    /// RFC 5256 §2.2 sent date.
    date: i64,
    /// Base subject, casemapped (RFC 5256 §2.1).
    subject: String,
    is_reply_or_forward: bool,
    message_id: Option<String>,
    /// RFC 5256 §3 REFERENCES step 1: the References msg-ids, or else the first In-Reply-To
    /// one. Empty for ORDEREDSUBJECT, which does not use them.
    references: Vec<String>,
}

impl Message {
    /// RFC 5256 §2.2: sent date, then sequence number.
    fn order(&self) -> (i64, u32) {
        (self.date, self.seq)
    }
}

impl Threader {
    pub fn new(algorithm: ThreadAlgorithm, uid: bool) -> Self {
        Threader {
            algorithm,
            uid,
            messages: Vec::new(),
        }
    }

    pub fn push(&mut self, c: &SortCandidate<'_>) {
        let (subject, is_reply_or_forward) = subject_key(c.structure);
        let (mut message_id, mut references) = (None, Vec::new());
        if let (ThreadAlgorithm::References, Some(s)) = (self.algorithm, c.structure) {
            message_id = s.message_id.clone().filter(|id| is_msg_id(id));
            references = s.references.iter().filter(|id| is_msg_id(id)).cloned().collect();
            if references.is_empty() {
                references.extend(s.in_reply_to.clone().filter(|id| is_msg_id(id)));
            }
        }
        self.messages.push(Message {
            seq: c.seq,
            number: if self.uid { c.uid } else { c.seq },
            date: sent_date(c.record, c.structure),
            subject,
            is_reply_or_forward,
            message_id,
            references,
        });
    }

    /// The threads in order.
    pub fn finish(self) -> Vec<Thread> {
        match self.algorithm {
            ThreadAlgorithm::OrderedSubject => ordered_subject(self.messages),
            ThreadAlgorithm::References => references(self.messages),
        }
    }
}

/// Whether a msg-id as the MIME layer parsed it (angle brackets removed) is a valid one, which
/// is all RFC 5256 §3 REFERENCES step 1 may use: RFC 5322 §3.6.4 msg-id is `id-left "@"
/// id-right`. The parser is lenient and also returns free text ("References: see below"), which
/// must not hide a valid In-Reply-To, nor give two messages the same made-up identity.
fn is_msg_id(id: &str) -> bool {
    id.split_once('@')
        .is_some_and(|(left, right)| !left.is_empty() && !right.is_empty())
}

/// RFC 5256 §3 ORDEREDSUBJECT: sort by base subject, then sent date; each run of one base
/// subject is a thread whose first message is the parent of all the others; threads are in the
/// order of their first messages' sent dates.
fn ordered_subject(mut messages: Vec<Message>) -> Vec<Thread> {
    messages.sort_by(|a, b| a.subject.cmp(&b.subject).then(a.order().cmp(&b.order())));
    let mut threads: Vec<((i64, u32), Thread)> = messages
        .chunk_by(|a, b| a.subject == b.subject)
        .filter_map(|run| {
            let (first, rest) = run.split_first()?;
            let mut nodes = Vec::with_capacity(run.len());
            nodes.push(ThreadNode {
                number: Some(first.number),
                children: u32::try_from(rest.len()).unwrap_or(u32::MAX),
            });
            nodes.extend(rest.iter().map(|m| ThreadNode {
                number: Some(m.number),
                children: 0,
            }));
            Some((first.order(), Thread { nodes }))
        })
        .collect();
    threads.sort_by_key(|(order, _)| *order);
    threads.into_iter().map(|(_, thread)| thread).collect()
}

/// A node of the REFERENCES tree: a message or a dummy.
#[derive(Debug, Default)]
struct Container {
    /// Index into the messages; `None` for a dummy.
    message: Option<usize>,
    parent: Option<usize>,
    /// Where this container sits in its parent's `children` (step 1 only).
    slot: usize,
    children: Vec<usize>,
}

/// The arena of containers, and the messages they hold.
struct Tree<'m> {
    messages: &'m [Message],
    containers: Vec<Container>,
}

impl<'m> Tree<'m> {
    fn add(&mut self, message: Option<usize>) -> usize {
        self.containers.push(Container {
            message,
            ..Container::default()
        });
        self.containers.len() - 1
    }

    fn message(&self, c: usize) -> Option<&'m Message> {
        let messages = self.messages;
        self.containers[c].message.map(|i| &messages[i])
    }

    fn is_dummy(&self, c: usize) -> bool {
        self.containers[c].message.is_none()
    }

    /// A message whose subject had a reply or forward marker (never a dummy).
    fn is_reply(&self, c: usize) -> bool {
        self.message(c).is_some_and(|m| m.is_reply_or_forward)
    }

    /// The message that stands for a container: itself, or for a dummy its first child's
    /// (RFC 5256 §3 steps 4 and 5), looked up without recursion.
    fn representative(&self, mut c: usize) -> Option<&'m Message> {
        for _ in 0..self.containers.len() {
            if let Some(m) = self.message(c) {
                return Some(m);
            }
            c = *self.containers[c].children.first()?;
        }
        None
    }

    /// Sort order of a container: its representative's sent date and sequence number.
    fn order(&self, c: usize) -> (i64, u32) {
        self.representative(c).map_or((i64::MAX, u32::MAX), Message::order)
    }

    /// Whether making `parent` the parent of `child` would close a loop: `child` is `parent`
    /// or one of its ancestors (RFC 5256 §3 step 1A). A child without children is nobody's
    /// ancestor, which spares the walk in the common case.
    fn would_loop(&self, parent: usize, child: usize) -> bool {
        if parent == child {
            return true;
        }
        if self.containers[child].children.is_empty() {
            return false;
        }
        let mut c = parent;
        // Links never form a loop, so the walk ends at a root; the bound only makes that
        // independent of the invariant.
        for _ in 0..self.containers.len() {
            match self.containers[c].parent {
                Some(up) if up == child => return true,
                Some(up) => c = up,
                None => return false,
            }
        }
        true
    }

    fn link(&mut self, parent: usize, child: usize) {
        let slot = self.containers[parent].children.len();
        self.containers[parent].children.push(child);
        let c = &mut self.containers[child];
        c.parent = Some(parent);
        c.slot = slot;
    }

    /// Breaks the link to the parent, if any. Sibling order does not matter before step 4 sorts
    /// them, so the last sibling takes the freed slot.
    fn unlink(&mut self, child: usize) {
        let Some(parent) = self.containers[child].parent.take() else {
            return;
        };
        let slot = self.containers[child].slot;
        let siblings = &mut self.containers[parent].children;
        if siblings.get(slot) != Some(&child) {
            return;
        }
        siblings.swap_remove(slot);
        if let Some(&moved) = siblings.get(slot) {
            self.containers[moved].slot = slot;
        }
    }

    /// Every container under `root`, each after all of its descendants.
    fn post_order(&self, root: usize) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.containers.len());
        let mut stack = vec![root];
        while let Some(c) = stack.pop() {
            order.push(c);
            stack.extend_from_slice(&self.containers[c].children);
        }
        order.reverse();
        order
    }

    fn sort_children(&mut self, c: usize) {
        let mut children = std::mem::take(&mut self.containers[c].children);
        children.sort_by_cached_key(|&child| self.order(child));
        self.containers[c].children = children;
    }
}

/// RFC 5256 §3 REFERENCES, steps 1 to 6.
fn references(mut messages: Vec<Message>) -> Vec<Thread> {
    // Step 1 goes through the messages in mailbox order: "first" of a duplicated Message-ID
    // means the lowest sequence number.
    messages.sort_by_key(|m| m.seq);
    let mut tree = Tree {
        messages: &messages,
        containers: Vec::with_capacity(messages.len() * 2),
    };
    let mut id_table: HashMap<&str, usize> = HashMap::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let own = match m.message_id.as_deref() {
            Some(id) => match id_table.get(id) {
                // Referred to before: this message fills the dummy.
                Some(&c) if tree.is_dummy(c) => {
                    tree.containers[c].message = Some(i);
                    c
                }
                // A duplicate: a unique Message-ID, that is none in the table.
                Some(_) => tree.add(Some(i)),
                None => {
                    let c = tree.add(Some(i));
                    id_table.insert(id, c);
                    c
                }
            },
            // No Message-ID: a unique one.
            None => tree.add(Some(i)),
        };
        // Step 1A: link each reference to the next, unless the next has a parent already (the
        // References may have been truncated) or the link would close a loop. A reference to
        // no message gets a dummy, used for every later reference to it.
        let mut previous = None;
        for reference in &m.references {
            let c = *id_table.entry(reference.as_str()).or_insert_with(|| tree.add(None));
            if let Some(p) = previous {
                if tree.containers[c].parent.is_none() && !tree.would_loop(p, c) {
                    tree.link(p, c);
                }
            }
            previous = Some(c);
        }
        // Step 1B: the last reference is the parent. A parent guessed from someone else's
        // References is broken first ("break the current parent/child link before creating the
        // new correct one"), so when the new link would close a loop, or there is no reference
        // at all, the message is left a root rather than under the guess.
        if tree.containers[own].parent != previous {
            tree.unlink(own);
            if let Some(p) = previous.filter(|&p| !tree.would_loop(p, own)) {
                tree.link(p, own);
            }
        }
    }

    // Step 2: the parentless containers are the children of the root.
    let root = tree.add(None);
    let roots: Vec<usize> = (0..root).filter(|&c| tree.containers[c].parent.is_none()).collect();
    tree.containers[root].children = roots;

    // Step 3: prune dummies, bottom-up, so every dummy is judged with its final children.
    for c in tree.post_order(root) {
        prune(&mut tree, c, c == root);
    }

    // Step 4: sort the threads by sent date, a dummy by its earliest child's.
    let tops = tree.containers[root].children.clone();
    for &c in &tops {
        if tree.is_dummy(c) {
            tree.sort_children(c);
        }
    }
    tree.sort_children(root);

    // Step 5: gather threads with the same base subject.
    merge_subjects(&mut tree, root);

    // Step 6: sort every set of siblings, children before their parents, so that a dummy is
    // placed by its earliest child.
    for c in tree.post_order(root) {
        tree.sort_children(c);
    }

    flatten(&tree, root)
}

/// RFC 5256 §3 step 3 for the children of `c`, whose own children are pruned already: a dummy
/// without children goes; a dummy with children is replaced by them, except at the root when
/// it has more than one.
fn prune(tree: &mut Tree<'_>, c: usize, is_root: bool) {
    let children = std::mem::take(&mut tree.containers[c].children);
    let mut kept = Vec::with_capacity(children.len());
    for child in children {
        if !tree.is_dummy(child) {
            kept.push(child);
            continue;
        }
        let grandchildren = &tree.containers[child].children;
        match grandchildren.len() {
            0 => {}
            1 => kept.push(grandchildren[0]),
            _ if is_root => kept.push(child),
            _ => kept.extend_from_slice(grandchildren),
        }
    }
    tree.containers[c].children = kept;
}

/// RFC 5256 §3 step 5: a subject table of one thread per base subject, preferring a dummy, then
/// a thread that is not a reply or forward; then every other thread with that subject is merged
/// into it.
fn merge_subjects(tree: &mut Tree<'_>, root: usize) {
    let tops = std::mem::take(&mut tree.containers[root].children);
    // 5A: a thread's subject is its representative's base subject, read before anything moves.
    let subjects: Vec<&str> = tops
        .iter()
        .map(|&c| tree.representative(c).map_or("", |m| m.subject.as_str()))
        .collect();
    // 5B: the subject table; threads without a subject take no part.
    let mut subject_table: HashMap<&str, usize> = HashMap::new();
    for (&c, &s) in tops.iter().zip(&subjects) {
        if s.is_empty() {
            continue;
        }
        match subject_table.get(s) {
            None => {
                subject_table.insert(s, c);
            }
            Some(&t) => {
                if !tree.is_dummy(t) && (tree.is_dummy(c) || (tree.is_reply(t) && !tree.is_reply(c))) {
                    subject_table.insert(s, c);
                }
            }
        }
    }
    // 5C: merge each thread into the table's.
    let mut kept = Vec::with_capacity(tops.len());
    for (&c, s) in tops.iter().zip(subjects) {
        let t = match subject_table.get(s) {
            Some(&t) if t != c => t,
            _ => {
                kept.push(c);
                continue;
            }
        };
        match (tree.is_dummy(t), tree.is_dummy(c)) {
            // Both dummies: c's children join t's.
            (true, true) => {
                let children = std::mem::take(&mut tree.containers[c].children);
                tree.containers[t].children.extend(children);
            }
            // The table holds a dummy, or a thread of which c is a reply or forward: c becomes
            // one of its children.
            (true, false) => tree.containers[t].children.push(c),
            (false, _) if tree.is_reply(c) && !tree.is_reply(t) => tree.containers[t].children.push(c),
            // Otherwise a new dummy parents both. It takes t's place (t's container turns into
            // the dummy and t's message moves into a new child), so the table entry and t's
            // position among the threads stay valid.
            (false, _) => {
                let moved = tree.add(tree.containers[t].message);
                tree.containers[moved].children = std::mem::take(&mut tree.containers[t].children);
                tree.containers[t].message = None;
                tree.containers[t].children = vec![moved, c];
            }
        }
    }
    tree.containers[root].children = kept;
}

/// The threads under `root` as flat [`Thread`]s. A dummy without children (none survives
/// pruning) would render as an empty list, so it is left out everywhere.
fn flatten(tree: &Tree<'_>, root: usize) -> Vec<Thread> {
    let empty_dummy = |c: usize| tree.is_dummy(c) && tree.containers[c].children.is_empty();
    let mut threads = Vec::with_capacity(tree.containers[root].children.len());
    for &top in &tree.containers[root].children {
        if empty_dummy(top) {
            continue;
        }
        let mut nodes = Vec::new();
        let mut stack = vec![top];
        while let Some(c) = stack.pop() {
            let children = &tree.containers[c].children;
            let count = children.iter().filter(|&&child| !empty_dummy(child)).count();
            nodes.push(ThreadNode {
                number: tree.message(c).map(|m| m.number),
                children: u32::try_from(count).unwrap_or(u32::MAX),
            });
            stack.extend(children.iter().rev().filter(|&&child| !empty_dummy(child)));
        }
        threads.push(Thread { nodes });
    }
    threads
}

/// Writes `* THREAD (2)(3 6 (4 23)(44 7 96))` (RFC 5256 §4 thread-data), or `* THREAD` when
/// nothing matched.
///
/// thread-list = "(" (thread-members / thread-nested) ")": a message with one child is followed
/// by it in the same list (`3 6`); one with several is followed by one list per child
/// (`6 (4 23)(44 7 96)`); a dummy adds no number, only its children's lists (`((3)(5))`).
pub fn render_threads(out: &mut Vec<u8>, threads: &[Thread]) {
    out.extend_from_slice(b"* THREAD");
    if !threads.is_empty() {
        out.push(b' ');
    }
    for thread in threads {
        render_thread(out, &thread.nodes);
    }
    out.extend_from_slice(b"\r\n");
}

fn render_thread(out: &mut Vec<u8>, nodes: &[ThreadNode]) {
    if nodes.is_empty() {
        return;
    }
    out.push(b'(');
    // One entry per open thread-nested: how many of its thread-lists are still to come.
    let mut open: Vec<u32> = Vec::new();
    for node in nodes {
        if let Some(n) = node.number {
            if out.last() != Some(&b'(') {
                out.push(b' ');
            }
            format::number(out, n);
        }
        match node.children {
            1 => {}
            0 => {
                // The end of a branch: close its list, then every nested set it completes,
                // up to one with lists still to come.
                out.push(b')');
                while let Some(rest) = open.last_mut() {
                    if *rest > 0 {
                        *rest -= 1;
                        out.push(b'(');
                        break;
                    }
                    open.pop();
                    out.push(b')');
                }
            }
            more => {
                if out.last() != Some(&b'(') {
                    out.push(b' ');
                }
                open.push(more - 1);
                out.push(b'(');
            }
        }
    }
}

#[cfg(test)]
mod tests;
