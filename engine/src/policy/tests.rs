use super::*;

#[test]
fn pair_parsing_and_errors() {
    let p: PortPair = "22/tcp".parse().unwrap();
    assert_eq!((p.port(), p.protocol()), (22, Protocol::Tcp));
    assert_eq!(p.to_string(), "22/tcp");
    assert_eq!(
        "53/UDP".parse::<PortPair>().unwrap(),
        PortPair::new(53, Protocol::Udp).unwrap()
    );
    assert_eq!(
        "0/tcp".parse::<PortPair>().unwrap_err().to_string(),
        "port 0 is not valid: ports are 1-65535"
    );
    assert_eq!(
        "70000/tcp".parse::<PortPair>().unwrap_err(),
        PolicyError::InvalidPort(70000)
    );
    assert!(matches!(
        "22/icmp".parse::<PortPair>(),
        Err(PolicyError::InvalidProtocol(_))
    ));
    assert!(matches!(
        "ssh".parse::<PortPair>(),
        Err(PolicyError::InvalidPair(_))
    ));
    assert!(PortPair::from_raw(0, 6).is_err());
    assert!(PortPair::from_raw(65536, 6).is_err());
    assert!(PortPair::from_raw(-1, 6).is_err());
    assert!(PortPair::from_raw(80, 1).is_err());
    assert!(PortPair::from_raw(65535, 17).is_ok());
}

#[test]
fn pairs_sort_by_protocol_then_port() {
    let mut v: Vec<PortPair> = ["80/udp", "443/tcp", "22/tcp", "53/udp"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    v.sort();
    let s: Vec<String> = v.iter().map(ToString::to_string).collect();
    assert_eq!(s, ["22/tcp", "443/tcp", "53/udp", "80/udp"]);
}

#[test]
fn open_is_idempotent_and_first_name_stays() {
    let mut c = Connection::new("eth0", "Ethernet", 2);
    let p = PortPair::new(22, Protocol::Tcp).unwrap();
    assert!(c.open_port(p, "ssh"));
    assert!(!c.open_port(p, "other"));
    assert_eq!(c.open.get(&p).map(|o| o.name.as_str()), Some("ssh"));
    let lan = Scope::parse(&["fd00::/8"]).unwrap();
    assert!(
        c.open_port_from(p, "other", lan.clone()),
        "a new scope is a change"
    );
    assert!(!c.open_port_from(p, "other", lan.clone()));
    assert_eq!(c.scope(p), Some(&lan));
    assert_eq!(c.open.get(&p).map(|o| o.name.as_str()), Some("ssh"));
    assert!(c.open_port(p, "ssh"), "any source replaces the scope");
    assert_eq!(c.scope(p), Some(&Scope::ANY));
    assert!(c.close_port(p));
    assert!(!c.close_port(p));
    assert!(!c.is_port_open(p));
}

#[test]
fn effective_set_is_own_plus_unignored_globals() {
    let mut pol = Policy::default();
    let a = PortPair::new(1, Protocol::Tcp).unwrap();
    let b = PortPair::new(2, Protocol::Tcp).unwrap();
    let c = PortPair::new(3, Protocol::Udp).unwrap();
    pol.open_global(a, "a");
    pol.open_global(b, "b");
    let mut conn = Connection::new("x", "x", 1);
    conn.open_port(c, "c");
    conn.ignore_global(b);
    assert_eq!(pol.effective(&conn), [a, c].into_iter().collect());
    assert!(
        !conn.is_port_open(a),
        "is_port_open answers for own pairs only"
    );
}

#[test]
fn icmp_defaults_follow_spec() {
    let p = IcmpPolicy::default();
    for t in [
        1, 2, 3, 4, 128, 129, 130, 131, 132, 143, 141, 142, 148, 149, 151, 152, 153,
    ] {
        assert!(p.allows(t, 1, false), "type {t}");
    }
    for t in 133..=136 {
        assert!(p.allows(t, 255, false));
        assert!(!p.allows(t, 255, true), "RFC 6980");
        assert!(!p.allows(t, 254, false));
    }
    for t in [130, 131, 132, 143] {
        assert!(!p.allows(t, 2, false), "MLD at hop limit 2");
    }
    for t in [0, 5, 100, 127, 137, 138, 139, 140, 144, 150, 154, 255] {
        assert!(!p.allows(t, 255, false), "type {t}");
    }
    assert!(p.overrides().is_empty());
}

#[test]
fn policy_serde_round_trip() {
    let mut pol = Policy::default();
    pol.open_global(PortPair::new(443, Protocol::Tcp).unwrap(), "https");
    let mut conn = Connection::new("eth0", "Ethernet", 2);
    conn.open_port(PortPair::new(53, Protocol::Udp).unwrap(), "dns");
    conn.ignore_global(PortPair::new(443, Protocol::Tcp).unwrap());
    pol.add_connection(conn).unwrap();
    pol.icmp.set(128, IcmpRule::Deny);
    let text = toml::to_string(&pol).unwrap();
    assert!(text.contains("\"443/tcp\" = \"https\""), "{text}");
    assert!(text.contains("state = true"), "the older form: {text}");
    let back: Policy = toml::from_str(&text).unwrap();
    assert_eq!(pol, back);
    // A [state] table and icmp_errors, written after other tables.
    pol.state.tcp_reset_s = 5;
    pol.state.enabled = false;
    pol.icmp_errors = IcmpErrors::Related;
    let text = toml::to_string(&pol).unwrap();
    assert!(text.contains("[state]"), "{text}");
    assert!(text.contains("icmp_errors = \"related\""), "{text}");
    let back: Policy = toml::from_str(&text).unwrap();
    assert_eq!(pol, back);
    // A scoped pair is a table with `from`.
    let lan = Scope::parse(&["fd00::/8", "2001:db8::/32"]).unwrap();
    pol.open_global_from(PortPair::new(22, Protocol::Tcp).unwrap(), "ssh", lan);
    let text = toml::to_string(&pol).unwrap();
    assert!(text.contains("fd00::/8"), "{text}");
    let back: Policy = toml::from_str(&text).unwrap();
    assert_eq!(pol, back);
    let inline = "[globals]\n\"22/tcp\" = { name = \"ssh\", from = [\"fd00::/8\"] }\n";
    let read: Policy = toml::from_str(inline).unwrap();
    assert_eq!(
        read.global_scope(PortPair::new(22, Protocol::Tcp).unwrap())
            .map(ToString::to_string),
        Some("fd00::/8".to_string())
    );
    let bad = "[globals]\n\"22/tcp\" = { name = \"ssh\", form = [] }\n";
    assert!(toml::from_str::<Policy>(bad)
        .unwrap_err()
        .to_string()
        .contains("form"));
    let bad = "[globals]\n\"22/tcp\" = { from = [\"fd00::/200\"] }\n";
    assert!(toml::from_str::<Policy>(bad)
        .unwrap_err()
        .to_string()
        .contains("\"fd00::/200\" is not an IPv6 prefix"));
    assert!(toml::from_str::<Policy>("[globals]\n\"0/tcp\" = \"x\"\n").is_err());
}
