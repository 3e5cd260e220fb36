//! Where log lines go: a shared buffer that a background thread writes out every
//! [`FLUSH_EVERY`] (or at once when it grows past [`FLUSH_AT`] bytes). Request handling never
//! waits on stdout, and unlike a channel to a writer thread, logging a line wakes nobody: at
//! thousands of requests per second the wake-ups alone cost more than formatting the lines.

use parking_lot::{Condvar, Mutex};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// Longest a line waits before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// A buffer this large is written at once.
const FLUSH_AT: usize = 256 * 1024;

struct Shared {
    buf: Mutex<Vec<u8>>,
    wake: Condvar,
    closed: Mutex<bool>,
}

/// The writer handed to the subscriber.
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

/// Writes what is left and stops the flusher when dropped (at exit).
pub struct LogGuard {
    shared: Arc<Shared>,
    flusher: Option<std::thread::JoinHandle<()>>,
}

/// A sink over `out` and the guard that drains it.
pub fn sink(out: Box<dyn Write + Send>) -> (LogSink, LogGuard) {
    let shared = Arc::new(Shared {
        buf: Mutex::new(Vec::with_capacity(64 * 1024)),
        wake: Condvar::new(),
        closed: Mutex::new(false),
    });
    let s = shared.clone();
    let flusher = std::thread::Builder::new()
        .name("log-flush".into())
        .spawn(move || flush_loop(&s, out))
        .ok();
    (
        LogSink {
            shared: shared.clone(),
        },
        LogGuard { shared, flusher },
    )
}

fn flush_loop(s: &Shared, mut out: Box<dyn Write + Send>) {
    let mut pending = Vec::with_capacity(64 * 1024);
    loop {
        {
            let mut buf = s.buf.lock();
            if buf.is_empty() {
                s.wake.wait_for(&mut buf, FLUSH_EVERY);
            }
            std::mem::swap(&mut *buf, &mut pending);
        }
        if !pending.is_empty() {
            // A log line that cannot be written has nowhere else to go.
            let _ = out.write_all(&pending).and_then(|()| out.flush());
            pending.clear();
        }
        if *s.closed.lock() && s.buf.lock().is_empty() {
            return;
        }
    }
}

/// One event's bytes, appended to the shared buffer in a single lock.
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buf = self.shared.buf.lock();
        buf.extend_from_slice(bytes);
        if buf.len() >= FLUSH_AT {
            self.shared.wake.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LineWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        *self.shared.closed.lock() = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.flusher.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Collect(Arc<Mutex<Vec<u8>>>);
    impl Write for Collect {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_soon_and_all_are_written_at_exit() {
        let out = Collect::default();
        let (sink, guard) = sink(Box::new(out.clone()));
        sink.make_writer().write_all(b"one\n").unwrap();
        std::thread::sleep(FLUSH_EVERY * 4);
        assert_eq!(&*out.0.lock(), b"one\n");
        for _ in 0..1000 {
            sink.make_writer().write_all(b"two\n").unwrap();
        }
        drop(guard);
        assert_eq!(out.0.lock().len(), 4 + 4000);
    }
}
