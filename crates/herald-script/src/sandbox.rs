//! One script thread's compiled scripts: a QuickJS runtime and context per script, with its
//! time and memory limits, and the classification of what went wrong.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use rquickjs::context::EvalOptions;
use rquickjs::{Context, Ctx, Function, Persistent, Runtime, Value};

use crate::{CompileError, Limits, RunError, Script};

/// QuickJS's own stack limit (deep recursion throws a `RangeError` instead of overflowing).
const STACK_BYTES: usize = 512 * 1024;

/// Compiled scripts kept per thread; the oldest is dropped past it.
const CACHED_SCRIPTS: usize = 256;

struct Compiled {
    // Field order is drop order: the function before its context before its runtime.
    function: Persistent<Function<'static>>,
    context: Context,
    _runtime: Runtime,
    deadline: Rc<Cell<Option<Instant>>>,
}

pub(crate) struct Cache {
    limits: Limits,
    compiled: HashMap<[u8; 32], Compiled>,
    order: VecDeque<[u8; 32]>,
}

impl Cache {
    pub(crate) fn new(limits: Limits) -> Self {
        Self { limits, compiled: HashMap::new(), order: VecDeque::new() }
    }

    pub(crate) fn check(&mut self, script: &Script) -> Result<(), CompileError> {
        self.compiled(script).map(|_| ())
    }

    pub(crate) fn run(&mut self, script: &Script, input: &str) -> Result<String, RunError> {
        let limits = self.limits;
        let compiled = self.compiled(script).map_err(|e| RunError::Compile(Box::new(e)))?;
        compiled.deadline.set(Some(Instant::now() + limits.time));
        let outcome = compiled.context.with(|ctx| {
            let function = compiled.function.clone().restore(&ctx).map_err(|_| RunError::Unavailable)?;
            let input = ctx.json_parse(input).map_err(|_| RunError::BadInput)?;
            let output = match function.call::<_, Value>((input,)) {
                Ok(output) => output,
                Err(error) => return Err(failure(&ctx, error, &compiled.deadline, limits)),
            };
            if output.is_undefined() {
                return Err(RunError::BadReturn("undefined"));
            }
            if output.is_function() {
                return Err(RunError::BadReturn("a function"));
            }
            if output.is_symbol() {
                return Err(RunError::BadReturn("a symbol"));
            }
            match ctx.json_stringify(output) {
                Ok(Some(text)) => {
                    text.to_string().map_err(|_| RunError::BadReturn("a string that is not UTF-8"))
                }
                Ok(None) => Err(RunError::BadReturn("undefined")),
                Err(error) => Err(failure(&ctx, error, &compiled.deadline, limits)),
            }
        });
        compiled.deadline.set(None);
        if matches!(outcome, Err(RunError::TimedOut(_) | RunError::OutOfMemory(_))) {
            // What the run left behind (an interrupted frame, a full heap) goes with it.
            self.compiled.remove(&script.key);
            self.order.retain(|key| *key != script.key);
        }
        outcome
    }

    fn compiled(&mut self, script: &Script) -> Result<&Compiled, CompileError> {
        if !self.compiled.contains_key(&script.key) {
            let compiled = compile(script, self.limits)?;
            if self.order.len() >= CACHED_SCRIPTS
                && let Some(oldest) = self.order.pop_front()
            {
                self.compiled.remove(&oldest);
            }
            self.order.push_back(script.key);
            self.compiled.insert(script.key, compiled);
        }
        self.compiled.get(&script.key).ok_or(CompileError::MissingFunction(script.function))
    }
}

fn compile(script: &Script, limits: Limits) -> Result<Compiled, CompileError> {
    let runtime = Runtime::new().map_err(|e| CompileError::Syntax { message: e.to_string(), line: None })?;
    runtime.set_memory_limit(limits.memory_bytes);
    runtime.set_max_stack_size(STACK_BYTES);
    let deadline: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
    let watched = deadline.clone();
    runtime
        .set_interrupt_handler(Some(Box::new(move || watched.get().is_some_and(|at| Instant::now() >= at))));
    let context =
        Context::full(&runtime).map_err(|e| CompileError::Syntax { message: e.to_string(), line: None })?;
    deadline.set(Some(Instant::now() + limits.time));
    let function = context.with(|ctx| {
        let mut options = EvalOptions::default();
        options.global = true;
        options.strict = false;
        options.filename = Some("script".to_owned());
        if let Err(error) = ctx.eval_with_options::<(), _>(script.source.as_bytes(), options) {
            let caught = ctx.catch();
            if let Some((name, message, line)) = describe(&caught)
                && name == "SyntaxError"
            {
                return Err(CompileError::Syntax { message: format!("{name}: {message}"), line });
            }
            let failure = classify(caught, error, &deadline, limits);
            return Err(CompileError::TopLevel(Box::new(failure)));
        }
        let value: Value =
            ctx.globals().get(script.function).map_err(|_| CompileError::MissingFunction(script.function))?;
        let function = value.into_function().ok_or(CompileError::MissingFunction(script.function))?;
        Ok(Persistent::save(&ctx, function))
    });
    deadline.set(None);
    Ok(Compiled { function: function?, context, _runtime: runtime, deadline })
}

/// What a failed call was: past the deadline, out of memory, or a thrown value.
fn failure(
    ctx: &Ctx<'_>,
    error: rquickjs::Error,
    deadline: &Cell<Option<Instant>>,
    limits: Limits,
) -> RunError {
    classify(ctx.catch(), error, deadline, limits)
}

fn classify(
    caught: Value<'_>,
    error: rquickjs::Error,
    deadline: &Cell<Option<Instant>>,
    limits: Limits,
) -> RunError {
    if deadline.get().is_some_and(|at| Instant::now() >= at) {
        return RunError::TimedOut(limits.time);
    }
    if matches!(error, rquickjs::Error::Allocation) {
        return RunError::OutOfMemory(limits.memory_bytes);
    }
    match describe(&caught) {
        Some((_, message, _)) if message == "out of memory" => RunError::OutOfMemory(limits.memory_bytes),
        Some((name, message, line)) => {
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            RunError::Threw(truncate(format!("{name}: {message}{at}")))
        }
        None if caught.is_null() || caught.is_undefined() => {
            // QuickJS throws nothing it can describe when it cannot allocate the error itself.
            if matches!(error, rquickjs::Error::Exception) {
                RunError::OutOfMemory(limits.memory_bytes)
            } else {
                RunError::Threw(truncate(error.to_string()))
            }
        }
        None => {
            let text = caught
                .as_string()
                .and_then(|s| s.to_string().ok())
                .or_else(|| caught.as_number().map(|n| n.to_string()))
                .unwrap_or_else(|| caught.type_name().to_owned());
            RunError::Threw(truncate(format!("uncaught {text}")))
        }
    }
}

/// An error object's name, message and line in the script, if it is one.
fn describe(value: &Value<'_>) -> Option<(String, String, Option<u32>)> {
    let object = value.as_object()?;
    let message: String = object.get("message").ok()?;
    let name: String =
        object.get::<_, Option<String>>("name").ok().flatten().unwrap_or_else(|| "Error".to_owned());
    let line = object.get::<_, Option<f64>>("lineNumber").ok().flatten().map(|n| n as u32).or_else(|| {
        object.get::<_, Option<String>>("stack").ok().flatten().and_then(|stack| line_in_stack(&stack))
    });
    Some((name, message, line))
}

/// The first `script:LINE` position in a stack trace.
fn line_in_stack(stack: &str) -> Option<u32> {
    let at = stack.find("script:")? + "script:".len();
    let digits: String = stack[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Error texts end up in attempt records: keep them short.
fn truncate(mut text: String) -> String {
    const MAX: usize = 500;
    if text.len() > MAX {
        let mut cut = MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}
