//! Tests of the configuration: sources, precedence, errors naming the setting and its source.
use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn defaults_parse_into_the_documented_values() {
    let config = Config::load_from(&Overrides::default(), &[]).expect("defaults are valid");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8040");
    assert_eq!(config.database, DatabaseConfig::Sqlite(PathBuf::from("herald-data/herald.db")));
    assert_eq!(config.portal_token_ttl, Duration::from_secs(86_400));
    assert_eq!(
        config.http,
        HttpConfig {
            max_connections: 1024,
            max_concurrent_requests: 256,
            header_read_timeout: Duration::from_secs(30),
            idle_connection_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
        }
    );
    assert!(config.admin_token.is_none());
    assert_eq!(config.delivery.consent, herald_core::consent::ConsentMode::Off);
    assert_eq!(config.delivery.consent_origin, None);
}

#[test]
fn later_sources_win_and_errors_name_the_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("herald.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nmax_body_bytes = 4096\n").expect("write");
    let mut overrides = Overrides { config_file: Some(file.clone()), ..Default::default() };
    let config = Config::load_from(&overrides, &env(&[("HERALD_MAX_BODY_BYTES", "8192")])).expect("valid");
    assert_eq!(config.listen.port(), 9000);
    assert_eq!(config.max_body_bytes, 8192);

    overrides.set("listen", "--listen", Some("127.0.0.1:9100".to_owned()));
    let config = Config::load_from(&overrides, &env(&[("HERALD_LISTEN", "127.0.0.1:9050")])).expect("valid");
    assert_eq!(config.listen.port(), 9100);

    let error = Config::load_from(&Overrides::default(), &env(&[("HERALD_LISTEN", "nonsense")]))
        .expect_err("invalid");
    let message = error.to_string();
    assert!(message.contains("`listen`") && message.contains("HERALD_LISTEN"), "{message}");

    std::fs::write(&file, "lisen = \"x\"\n").expect("write");
    let overrides = Overrides { config_file: Some(file), ..Default::default() };
    let error = Config::load_from(&overrides, &[]).expect_err("unknown key");
    assert!(error.to_string().contains("unknown setting `lisen`"), "{error}");
}

#[test]
fn database_urls_are_checked() {
    let sqlite =
        Config::load_from(&Overrides::default(), &env(&[("HERALD_DATABASE_URL", "sqlite:///tmp/x.db")]))
            .expect("valid");
    assert_eq!(sqlite.database, DatabaseConfig::Sqlite(PathBuf::from("/tmp/x.db")));
    let error = Config::load_from(&Overrides::default(), &env(&[("HERALD_DATABASE_URL", "mysql://x")]))
        .expect_err("unsupported");
    assert!(error.to_string().contains("HERALD_DATABASE_URL"));
}

#[test]
fn durations_parse_with_units() {
    assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
    assert!(parse_duration("5 weeks").is_err());
    assert!(parse_duration("").is_err());
}

#[test]
fn portal_frame_ancestors_take_csp_sources_and_nothing_that_could_end_the_directive() {
    for (given, kept) in [
        ("*", "*"),
        ("'self'", "'self'"),
        ("'none'", "'none'"),
        (
            "  https://app.example.com   https://*.example.com:8443 ",
            "https://app.example.com https://*.example.com:8443",
        ),
        ("https: 'self'", "https: 'self'"),
    ] {
        assert_eq!(parse_frame_ancestors(given).as_deref(), Ok(kept), "{given}");
    }
    for bad in [
        "",
        "   ",
        "'none' 'self'",
        "https://a.example; script-src *",
        "https://a.example,https://b",
        "'unsafe-inline'",
        "example.com",
        "https://a.example\"",
        "\n",
    ] {
        assert!(parse_frame_ancestors(bad).is_err(), "{bad:?} must be refused");
    }
    let config = Config::load_from(&Overrides::default(), &env(&[("HERALD_PORTAL_FRAME_ANCESTORS", "x; y")]));
    let error = config.expect_err("a semicolon is refused").to_string();
    assert!(
        error.contains("portal_frame_ancestors") && error.contains("HERALD_PORTAL_FRAME_ANCESTORS"),
        "{error}"
    );
}

#[test]
fn an_unknown_herald_variable_is_warned_about_and_known_ones_are_not() {
    let config = Config::load_from(
        &Overrides::default(),
        &env(&[("HERALD_LISTNE", "127.0.0.1:9"), ("HERALD_LOG_LEVEL", "debug"), ("HERALD_TOKEN", "sk_x")]),
    )
    .expect("loads");
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(config.warnings[0].contains("HERALD_LISTNE"), "{:?}", config.warnings);
    assert_eq!(config.log_level, "debug");
}

#[test]
fn a_toml_error_names_its_line_and_column() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("herald.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:8040\"\nlog_level = = \"debug\"\n").expect("write");
    let overrides = Overrides { config_file: Some(path), ..Overrides::default() };
    let error = Config::load_from(&overrides, &[]).expect_err("invalid TOML").to_string();
    assert!(error.contains("line 2, column"), "{error}");
}

#[test]
fn script_limits_are_accepted_up_to_their_bounds_and_refused_past_them() {
    let load = |pairs: &[(&str, &str)]| Config::load_from(&Overrides::default(), &env(pairs));
    let defaults = load(&[]).expect("defaults");
    assert_eq!(defaults.delivery.script_limits, herald_script::Limits::default());
    assert_eq!((defaults.delivery.script_threads, defaults.delivery.validate_payloads), (2, false));
    assert_eq!(defaults.delivery.payload_version_header.as_str(), "herald-payload-version");
    let at_bounds = load(&[
        ("HERALD_SCRIPT_TIME_LIMIT", "10s"),
        ("HERALD_SCRIPT_MEMORY_LIMIT", "1073741824"),
        ("HERALD_SCRIPT_THREADS", "64"),
        ("HERALD_PAYLOAD_VERSION_HEADER", "X-Payload-Version"),
    ])
    .expect("at the bounds");
    assert_eq!(at_bounds.delivery.script_limits.time, Duration::from_secs(10));
    assert_eq!(at_bounds.delivery.script_limits.memory_bytes, 1 << 30);
    assert_eq!(
        load(&[("HERALD_SCRIPT_MEMORY_LIMIT", "1048576")])
            .expect("1 MiB")
            .delivery
            .script_limits
            .memory_bytes,
        1 << 20
    );
    for (key, value) in [
        ("HERALD_SCRIPT_TIME_LIMIT", "10001ms"),
        ("HERALD_SCRIPT_TIME_LIMIT", "0s"),
        ("HERALD_SCRIPT_MEMORY_LIMIT", "1048575"),
        ("HERALD_SCRIPT_MEMORY_LIMIT", "1073741825"),
        ("HERALD_SCRIPT_THREADS", "0"),
        ("HERALD_SCRIPT_THREADS", "65"),
        ("HERALD_PAYLOAD_VERSION_HEADER", "webhook-version"),
        ("HERALD_PAYLOAD_VERSION_HEADER", "bad header"),
        ("HERALD_VALIDATE_PAYLOADS", "yes"),
    ] {
        let error = load(&[(key, value)]).expect_err(value).to_string();
        let setting = key.trim_start_matches("HERALD_").to_ascii_lowercase();
        assert!(error.contains(&setting), "{key}={value}: {error}");
    }
}
