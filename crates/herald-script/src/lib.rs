//! Herald's sandbox for JavaScript written by operators (payload converters) and customers
//! (endpoint transformations).
//!
//! Scripts run on threads of their own (never on the async runtime that serves requests and
//! deliveries), on QuickJS without its C library: there is no file system, network, timer or
//! module loader to reach, only the language and its built-in objects. Every run is bounded
//! in wall-clock time (an interrupt checked while the script runs) and in memory (the
//! runtime's allocator refuses past the limit), and a script is compiled once per thread and
//! reused until evicted. A run that timed out or ran out of memory discards its runtime, so
//! nothing it left behind reaches the next run; otherwise a script's global variables may
//! survive between runs on the same thread (do not rely on that either way).

mod sandbox;

use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tokio::sync::oneshot;

/// How long and how much memory one run may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time of one run (compiling included), on a script thread.
    pub time: Duration,
    /// Memory of one script's runtime, in bytes (its heap, objects and strings).
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { time: Duration::from_millis(50), memory_bytes: 16 << 20 }
    }
}

/// The largest script source accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 51_200;

/// A script and the function in it that is called.
#[derive(Debug, Clone)]
pub struct Script {
    source: Arc<str>,
    function: &'static str,
    key: [u8; 32],
}

impl Script {
    /// A script whose `function` (e.g. `handler`, `convert`) is called with one argument.
    pub fn new(source: impl Into<Arc<str>>, function: &'static str) -> Self {
        let source = source.into();
        let mut hash = Sha256::new();
        hash.update(function.as_bytes());
        hash.update([0]);
        hash.update(source.as_bytes());
        Self { source, function, key: hash.finalize().into() }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn function(&self) -> &'static str {
        self.function
    }
}

/// Why a script does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("{message}{}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Syntax { message: String, line: Option<u32> },
    #[error("the script does not define `function {0}(...)`")]
    MissingFunction(&'static str),
    #[error("the script is {size} bytes; the most is {MAX_SOURCE_BYTES}")]
    TooLarge { size: usize },
    #[error("running the script's top level: {0}")]
    TopLevel(Box<RunError>),
}

/// Why a run gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("the script does not compile: {0}")]
    Compile(Box<CompileError>),
    #[error("the script threw: {0}")]
    Threw(String),
    #[error("the script ran past its time limit of {} ms", .0.as_millis())]
    TimedOut(Duration),
    #[error("the script went past its memory limit of {} KiB", .0 / 1024)]
    OutOfMemory(usize),
    #[error("the script's return value is unusable: {0}")]
    BadReturn(&'static str),
    #[error("the input is not JSON the script can read")]
    BadInput,
    #[error("the script engine is not running")]
    Unavailable,
}

enum Job {
    Check { script: Script, reply: oneshot::Sender<Result<(), CompileError>> },
    Run { script: Script, input: String, reply: oneshot::Sender<Result<String, RunError>> },
}

/// The script threads. Cloning shares them; they stop when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Engine {
    jobs: mpsc::Sender<Job>,
    limits: Limits,
}

impl Engine {
    /// Starts `threads` script threads (at least one).
    pub fn start(threads: usize, limits: Limits) -> std::io::Result<Self> {
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("herald-script-{index}"))
                // QuickJS checks its own stack limit (`sandbox::STACK_BYTES`); the thread's is
                // well above it.
                .stack_size(8 << 20)
                .spawn(move || worker(&receiver, limits))?;
        }
        Ok(Self { jobs, limits })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Compiles the script (and runs its top level) to check it defines its function.
    pub async fn check(&self, script: &Script) -> Result<(), CompileError> {
        if script.source.len() > MAX_SOURCE_BYTES {
            return Err(CompileError::TooLarge { size: script.source.len() });
        }
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job::Check { script: script.clone(), reply }).is_err() {
            return Err(CompileError::TopLevel(Box::new(RunError::Unavailable)));
        }
        answer.await.unwrap_or(Err(CompileError::TopLevel(Box::new(RunError::Unavailable))))
    }

    /// Calls the script's function with `input` (JSON text); its return value as JSON text.
    pub async fn run(&self, script: &Script, input: String) -> Result<String, RunError> {
        if script.source.len() > MAX_SOURCE_BYTES {
            return Err(RunError::Compile(Box::new(CompileError::TooLarge { size: script.source.len() })));
        }
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job::Run { script: script.clone(), input, reply }).is_err() {
            return Err(RunError::Unavailable);
        }
        answer.await.unwrap_or(Err(RunError::Unavailable))
    }
}

/// One script thread: takes jobs until the engine is dropped.
fn worker(receiver: &Mutex<mpsc::Receiver<Job>>, limits: Limits) {
    let mut cache = sandbox::Cache::new(limits);
    loop {
        let job = {
            let receiver = receiver.lock().unwrap_or_else(PoisonError::into_inner);
            receiver.recv()
        };
        let Ok(job) = job else { return };
        // A panic in the engine's bindings must not take the thread (and its queue) down.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match job {
            Job::Check { script, reply } => {
                let _ = reply.send(cache.check(&script));
            }
            Job::Run { script, input, reply } => {
                let _ = reply.send(cache.run(&script, &input));
            }
        }));
        if outcome.is_err() {
            cache = sandbox::Cache::new(limits);
        }
    }
}

#[cfg(test)]
mod tests;
