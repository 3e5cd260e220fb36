//! Coalescing of concurrent statements of one shape into one statement. Under load most of
//! PostgreSQL's work for a short statement is the statement itself (a protocol round, an
//! executor set up and torn down, for a write a commit and its WAL flush), not its row;
//! callers that want the same kind of statement at the same moment share one.
//!
//! No waiting is added: an item runs at once when nothing of its key is in flight (see
//! [`Batch::RUNNERS`]); otherwise it joins the next batch, which starts as soon as the running one
//! ends. What a batch does with its items, and how each is answered, is the [`Batch`]'s.

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Item bytes per statement past its first item (one item can be large; a batch stays small).
pub const MAX_BYTES: usize = 1 << 20;

/// A kind of statement that can run many items at once.
pub trait Batch: Send + Sync + 'static {
    /// What decides the statement's text: items of one key share a statement.
    type Key: Hash + Eq + Clone + Send + Sync + 'static;
    type Item: Send + 'static;
    type Out: Send + 'static;

    /// Statements of one key in flight; one more while every running one has a lone item
    /// (at two or three clients, waiting for another's statement costs more than a batch
    /// saves).
    const RUNNERS: usize;
    /// Items per statement.
    const MAX_ITEMS: usize;

    /// Bytes an item adds to a statement.
    fn bytes(item: &Self::Item) -> usize;

    /// Runs `items` (at least one) and answers each.
    fn run(&self, key: &Self::Key, items: Vec<Member<Self>>) -> impl Future<Output = ()> + Send;
}

/// An item waiting for its answer.
pub struct Member<B: Batch + ?Sized> {
    pub item: B::Item,
    pub answer: oneshot::Sender<B::Out>,
}

struct Queue<B: Batch> {
    waiting: VecDeque<Member<B>>,
    /// Runners of this key.
    running: usize,
    /// Of those, the ones running more than one item.
    batching: usize,
}

type Queues<B> = Arc<Mutex<FxHashMap<<B as Batch>::Key, Queue<B>>>>;

/// Items by key, each key's run by at most [`Batch::RUNNERS`] (+1) tasks.
pub struct Coalescer<B: Batch> {
    batch: Arc<B>,
    queues: Queues<B>,
}

impl<B: Batch> Coalescer<B> {
    pub fn new(batch: B) -> Self {
        Self {
            batch: Arc::new(batch),
            queues: Arc::default(),
        }
    }

    /// Runs `item`, alone or with others of `key`; `None` if its batch was lost (a panic).
    pub async fn submit(&self, key: B::Key, item: B::Item) -> Option<B::Out> {
        let (answer, rx) = oneshot::channel();
        let start = {
            let mut queues = self.queues.lock();
            let q = queues.entry(key.clone()).or_insert_with(|| Queue {
                waiting: VecDeque::new(),
                running: 0,
                batching: 0,
            });
            q.waiting.push_back(Member { item, answer });
            let start = q.running < B::RUNNERS || (q.running == B::RUNNERS && q.batching == 0);
            q.running += usize::from(start);
            start
        };
        if start {
            // A task of its own: a caller that goes away does not cancel the others' items.
            let runner = Runner {
                queues: self.queues.clone(),
                key,
                batching: false,
                left: false,
            };
            tokio::spawn(runner.run(self.batch.clone()));
        }
        rx.await.ok()
    }
}

/// A runner's place in its key's queue.
struct Runner<B: Batch> {
    queues: Queues<B>,
    key: B::Key,
    /// Whether its current batch has more than one item.
    batching: bool,
    left: bool,
}

impl<B: Batch> Runner<B> {
    /// Runs batches until none is waiting.
    async fn run(mut self, batch: Arc<B>) {
        while let Some(items) = self.next() {
            batch.run(&self.key, items).await;
        }
    }

    /// The next batch; `None`, having left the queue, when nothing waits. Leaving is decided
    /// under the lock an item takes to join, so no item is left without a runner.
    fn next(&mut self) -> Option<Vec<Member<B>>> {
        let mut queues = self.queues.lock();
        let q = queues.get_mut(&self.key)?;
        q.batching -= usize::from(std::mem::take(&mut self.batching));
        let items = take_batch(&mut q.waiting, B::MAX_ITEMS, |m| B::bytes(&m.item));
        if items.is_empty() {
            q.running -= 1;
            if q.running == 0 {
                queues.remove(&self.key);
            }
            self.left = true;
            return None;
        }
        self.batching = items.len() > 1;
        q.batching += usize::from(self.batching);
        Some(items)
    }
}

impl<B: Batch> Drop for Runner<B> {
    /// Only when a runner is dropped mid-way (a panic, or the runtime shutting down): gives
    /// the place back; with no runner left, the items still waiting are dropped, so their
    /// callers get `None` instead of hanging.
    fn drop(&mut self) {
        if self.left {
            return;
        }
        let mut queues = self.queues.lock();
        if let Some(q) = queues.get_mut(&self.key) {
            q.running -= 1;
            q.batching -= usize::from(self.batching);
            if q.running == 0 {
                queues.remove(&self.key);
            }
        }
    }
}

/// The next batch from the front of the queue: at most `max_items` items and, past the
/// first, at most [`MAX_BYTES`].
fn take_batch<T>(
    waiting: &mut VecDeque<T>,
    max_items: usize,
    bytes_of: impl Fn(&T) -> usize,
) -> Vec<T> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while let Some(next) = waiting.front() {
        let b = bytes_of(next);
        if batch.len() == max_items || (!batch.is_empty() && bytes + b > MAX_BYTES) {
            break;
        }
        bytes += b;
        batch.extend(waiting.pop_front());
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn batches_stop_at_the_item_and_byte_bounds() {
        let mut q: VecDeque<usize> = std::iter::repeat_n(10, 21).collect();
        assert_eq!(take_batch(&mut q, 16, |b| *b).len(), 16);
        assert_eq!(take_batch(&mut q, 16, |b| *b).len(), 5);
        assert!(take_batch(&mut q, 16, |b| *b).is_empty());

        // An item larger than the byte bound still runs, alone.
        let mut q: VecDeque<usize> =
            [MAX_BYTES + 1, 10, MAX_BYTES / 2, MAX_BYTES / 2 - 10, 1].into();
        assert_eq!(take_batch(&mut q, 16, |b| *b).len(), 1);
        assert_eq!(take_batch(&mut q, 16, |b| *b).len(), 3);
        assert_eq!(take_batch(&mut q, 16, |b| *b).len(), 1);
    }

    /// Doubles its items after a pause, counting statements and the largest batch.
    #[derive(Default)]
    struct Doubler {
        statements: AtomicUsize,
        largest: AtomicUsize,
    }

    impl Batch for Doubler {
        type Key = &'static str;
        type Item = u32;
        type Out = u32;
        const RUNNERS: usize = 1;
        const MAX_ITEMS: usize = 16;
        fn bytes(_: &u32) -> usize {
            4
        }
        async fn run(&self, key: &&'static str, items: Vec<Member<Self>>) {
            assert_ne!(*key, "panics", "a lost batch");
            self.statements.fetch_add(1, Ordering::SeqCst);
            self.largest.fetch_max(items.len(), Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            for m in items {
                let _ = m.answer.send(m.item * 2);
            }
        }
    }

    #[tokio::test]
    async fn a_lone_item_runs_at_once_and_concurrent_ones_share_statements() {
        let c = Arc::new(Coalescer::new(Doubler::default()));
        assert_eq!(c.submit("a", 1).await, Some(2));
        assert_eq!(c.batch.statements.load(Ordering::SeqCst), 1);

        let answers = futures::future::join_all((0..50).map(|i| {
            let c = c.clone();
            async move { c.submit(if i % 2 == 0 { "a" } else { "b" }, i).await }
        }))
        .await;
        for (i, a) in answers.into_iter().enumerate() {
            assert_eq!(a, Some(2 * i as u32));
        }
        let statements = c.batch.statements.load(Ordering::SeqCst);
        assert!(statements < 10, "{statements} statements for 50 items");
        assert!(c.batch.largest.load(Ordering::SeqCst) > 1);
        assert!(c.queues.lock().is_empty(), "every runner left");
    }

    #[tokio::test]
    async fn a_lost_batch_answers_none_and_frees_its_key() {
        let c = Coalescer::new(Doubler::default());
        assert_eq!(c.submit("panics", 1).await, None);
        assert!(c.queues.lock().is_empty());
        assert_eq!(c.submit("a", 2).await, Some(4));
    }
}
