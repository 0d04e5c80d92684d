//! The sandbox's guarantees, each as a user of a converter or transformation meets it.

#![allow(clippy::unwrap_used)]

use super::*;

fn engine() -> Engine {
    Engine::start(1, Limits { time: Duration::from_millis(100), memory_bytes: 8 << 20 }).unwrap()
}

const RENAME: &str = "function handler(webhook) {\n  webhook.payload.total = webhook.payload.amount;\n  delete webhook.payload.amount;\n  return webhook;\n}";

#[tokio::test]
async fn a_handler_changes_its_input_and_the_result_comes_back_as_json() {
    let engine = engine();
    let script = Script::new(RENAME, "handler");
    engine.check(&script).await.unwrap();
    let out = engine.run(&script, r#"{"payload":{"amount":12}}"#.to_owned()).await.unwrap();
    assert_eq!(out, r#"{"payload":{"total":12}}"#);
    // Compiled once, run again.
    let out = engine.run(&script, r#"{"payload":{"amount":7,"id":"x"}}"#.to_owned()).await.unwrap();
    assert_eq!(out, r#"{"payload":{"id":"x","total":7}}"#);
}

#[tokio::test]
async fn a_syntax_error_names_its_line() {
    let error = engine()
        .check(&Script::new("function handler(w) {\n  return w;\n}}\n", "handler"))
        .await
        .unwrap_err();
    match error {
        CompileError::Syntax { line, message } => {
            assert_eq!(line, Some(3), "{message}");
            assert!(message.starts_with("SyntaxError"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_script_without_its_function_is_refused() {
    let error =
        engine().check(&Script::new("function convert(p) { return p; }", "handler")).await.unwrap_err();
    assert_eq!(error, CompileError::MissingFunction("handler"));
    let error = engine().check(&Script::new("var handler = 3;", "handler")).await.unwrap_err();
    assert_eq!(error, CompileError::MissingFunction("handler"));
}

#[tokio::test]
async fn an_infinite_loop_times_out_and_the_thread_serves_the_next_run() {
    let engine = engine();
    let looping = Script::new("function handler(w) { while (true) {} }", "handler");
    let started = std::time::Instant::now();
    let error = engine.run(&looping, "{}".to_owned()).await.unwrap_err();
    assert_eq!(error, RunError::TimedOut(Duration::from_millis(100)));
    assert!(started.elapsed() < Duration::from_secs(5));
    let fine = Script::new(RENAME, "handler");
    assert!(engine.run(&fine, r#"{"payload":{}}"#.to_owned()).await.is_ok());
    // A loop at the top level is bounded too.
    let error = engine.check(&Script::new("for (;;) {}\nfunction handler(w) { return w; }", "handler")).await;
    assert_eq!(error, Err(CompileError::TopLevel(Box::new(RunError::TimedOut(Duration::from_millis(100))))));
}

#[tokio::test]
async fn a_memory_bomb_runs_out_of_memory_without_taking_the_process() {
    // Time enough to reach the memory limit on a slow machine.
    let engine = Engine::start(1, Limits { time: Duration::from_secs(5), memory_bytes: 8 << 20 }).unwrap();
    let bomb = Script::new(
        "function handler(w) { var a = []; for (var i = 0; ; i++) { a.push('x'.repeat(65536) + i); } }",
        "handler",
    );
    let error = engine.run(&bomb, "{}".to_owned()).await.unwrap_err();
    assert_eq!(error, RunError::OutOfMemory(8 << 20));
    let doubling = Script::new(
        "function handler(w) { var o = {}; for (var i = 0; ; i++) { o['key' + i] = [i, i, i]; } }",
        "handler",
    );
    assert_eq!(engine.run(&doubling, "{}".to_owned()).await.unwrap_err(), RunError::OutOfMemory(8 << 20));
    assert!(engine.run(&Script::new(RENAME, "handler"), r#"{"payload":{}}"#.to_owned()).await.is_ok());
}

#[tokio::test]
async fn deep_recursion_is_an_error_not_a_crash() {
    let script = Script::new("function handler(w) { return handler(w); }", "handler");
    let error = engine().run(&script, "{}".to_owned()).await.unwrap_err();
    assert!(matches!(&error, RunError::Threw(m) if m.contains("stack")), "{error:?}");
}

#[tokio::test]
async fn a_throw_is_reported_with_its_message_and_line() {
    let script = Script::new("function handler(w) {\n  throw new TypeError('no amount');\n}", "handler");
    let error = engine().run(&script, "{}".to_owned()).await.unwrap_err();
    assert_eq!(error, RunError::Threw("TypeError: no amount (line 2)".to_owned()));
    let script = Script::new("function handler(w) { throw 'plain'; }", "handler");
    assert_eq!(
        engine().run(&script, "{}".to_owned()).await.unwrap_err(),
        RunError::Threw("uncaught plain".to_owned())
    );
}

#[tokio::test]
async fn nothing_outside_the_language_is_reachable() {
    let engine = engine();
    for probe in [
        "require('fs')",
        "fetch('http://127.0.0.1/')",
        "setTimeout(function () {}, 1)",
        "std.open('/etc/passwd')",
        "os.exec(['ls'])",
        "new XMLHttpRequest()",
    ] {
        let script = Script::new(format!("function handler(w) {{ return {probe}; }}"), "handler");
        let error = engine.run(&script, "{}".to_owned()).await.unwrap_err();
        assert!(
            matches!(&error, RunError::Threw(m) if m.starts_with("ReferenceError")),
            "{probe}: {error:?}"
        );
    }
    // Modules cannot be loaded: a static import does not compile, a dynamic one is refused.
    assert!(
        engine
            .check(&Script::new("import fs from 'fs';\nfunction handler(w) { return w; }", "handler"))
            .await
            .is_err()
    );
    let dynamic = Script::new("function handler(w) { import('fs'); return w; }", "handler");
    assert!(engine.run(&dynamic, "{}".to_owned()).await.is_ok(), "the promise is never run");
}

#[tokio::test]
async fn what_is_not_json_is_refused() {
    let engine = engine();
    let undefined = Script::new("function handler(w) { }", "handler");
    assert_eq!(engine.run(&undefined, "{}".to_owned()).await.unwrap_err(), RunError::BadReturn("undefined"));
    let function = Script::new("function handler(w) { return handler; }", "handler");
    assert_eq!(engine.run(&function, "{}".to_owned()).await.unwrap_err(), RunError::BadReturn("a function"));
    let fine = Script::new("function handler(w) { return w; }", "handler");
    assert_eq!(engine.run(&fine, "{not json".to_owned()).await.unwrap_err(), RunError::BadInput);
    let big = Script::new(
        format!("function handler(w) {{ return w; }}//{}", "x".repeat(MAX_SOURCE_BYTES)),
        "handler",
    );
    assert!(matches!(engine.check(&big).await, Err(CompileError::TooLarge { .. })));
}

#[tokio::test]
async fn runs_on_several_threads_at_once_all_complete() {
    let engine = Engine::start(2, Limits::default()).unwrap();
    let script = Script::new(RENAME, "handler");
    let runs = (0..64).map(|i| {
        let engine = engine.clone();
        let script = script.clone();
        async move { engine.run(&script, format!(r#"{{"payload":{{"amount":{i}}}}}"#)).await }
    });
    let outputs: Vec<_> = futures_join_all(runs).await;
    for (i, out) in outputs.into_iter().enumerate() {
        assert_eq!(out.unwrap(), format!(r#"{{"payload":{{"total":{i}}}}}"#));
    }
}

async fn futures_join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    for future in futures.into_iter().collect::<Vec<_>>() {
        out.push(future.await);
    }
    out
}
