//! containerd's filter language over snapshots: the examples of docs/semantics.md#filters,
//! containerd's own `filters` test cases (parser and scanner) ported to the snapshot adaptor, the
//! scanner's quirks, the error messages, and a proptest that no input panics.

use overlaysnap::core::{Filter, Info, Kind, Labels, Timestamp};
use overlaysnap::{Error, ErrorKind};
use proptest::prelude::*;
use rstest::rstest;

fn info(name: &str, kind: Kind, parent: Option<&str>, labels: &[(&str, &str)]) -> Info {
    Info {
        kind,
        name: name.to_owned(),
        parent: parent.map(str::to_owned),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Labels>(),
        created: Timestamp::default(),
        updated: Timestamp::default(),
    }
}

/// containerd's filter_test.go corpus (0..=8; its `other` field is the label `other` here),
/// plus snapshots for the docs/semantics.md#filters examples (9..=11).
fn corpus() -> Vec<Info> {
    use Kind::*;
    vec![
        info("foo", Committed, None, &[("foo", "true")]),
        info("bar", Active, Some("foo"), &[]),
        info(
            "foo",
            Committed,
            None,
            &[("foo", "present"), ("more complex label", "present")],
        ),
        info("bar", View, Some("foo"), &[("bar", "true")]),
        info(
            "fooer",
            Committed,
            None,
            &[("more complex label with \\ and \"", "present")],
        ),
        info(
            "fooer",
            Committed,
            None,
            &[("more complex label with \\ and \".post", "present")],
        ),
        info("baz", Active, None, &[("other", "too complex, yo")]),
        info("bazo", Active, None, &[("other", "abc")]),
        info(
            "compound",
            Committed,
            None,
            &[("foo", "omg_asdf.asdf-qwer")],
        ),
        info(
            "sha256:0123",
            Committed,
            Some("foo"),
            &[("containerd.io/gc.root", "x"), ("a.b", "c")],
        ),
        info("a", Active, Some("sha256:0123"), &[("l", "")]),
        info("a", View, Some("sha256:0123"), &[("a.b", "d"), ("é", "☃")]),
    ]
}

const ALL: &[usize] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

fn selected(filter: &Filter) -> Vec<usize> {
    corpus()
        .iter()
        .enumerate()
        .filter(|(_, i)| filter.matches(i))
        .map(|(n, _)| n)
        .collect()
}

fn message(err: Error) -> String {
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    match err {
        Error::InvalidArgument(m) => m,
        other => panic!("not InvalidArgument: {other}"),
    }
}

#[rstest]
// docs/semantics.md#filters examples.
#[case::gc_root(r#"labels."containerd.io/gc.root"==x"#, &[9])]
#[case::has_parent(r#"parent!="""#, &[1, 3, 9, 10, 11])]
#[case::name_and_label(r#"name==a,labels.l"#, &[10])]
#[case::regex_prefix(r#"name~=^sha256:"#, &[9])]
// containerd filter_test.go, on the snapshot adaptor (name is always present).
#[case::empty("", ALL)]
#[case::present("name", ALL)]
#[case::label_present("labels.foo", &[0, 2, 8])]
#[case::name_and_label_present("labels.foo,name", &[0, 2, 8])]
#[case::label_value("labels.foo==true", &[0])]
#[case::label_value_punctuated("labels.foo==omg_asdf.asdf-qwer", &[8])]
#[case::name("name==bar", &[1, 3])]
#[case::name_not_equal("name!=bar", &[0, 2, 4, 5, 6, 7, 8, 9, 10, 11])]
#[case::name_and_label_present2("name==bar,labels.bar", &[3])]
#[case::quoted_value(r#"labels.other=="too complex, yo""#, &[6])]
#[case::regexp_value("labels.other~=[abc]+,name!=foo", &[6, 7])]
#[case::regexp_quoted_value("labels.other~=/[abc]+/,name!=foo", &[6, 7])]
#[case::regexp_quoted_value_comma("labels.other~=/[abc]{1,2}/,name!=foo", &[6, 7])]
#[case::regexp_quoted_value_garbage(r#"labels.other~=/[abc]{0,1}"\//,name!=foo"#, &[])]
#[case::name_and_label_value("name==bar,labels.bar==true", &[3])]
#[case::name_and_label_value_no_match("name==bar,labels.bar==wrong", &[])]
#[case::label_quoted_fieldpath_present(r#"name==foo,labels."more complex label""#, &[2])]
#[case::label_quoted_fieldpath_with_quoted(r#"labels."more complex label with \\ and \""==present"#, &[4])]
#[case::label_quoted_fieldpath_embed(r#"labels."more complex label with \\ and \"".post==present"#, &[5])]
// containerd scanner_test.go inputs that parse.
#[case::cowsay("name~=牛,labels.moo", &[])]
#[case::cowsay_regexp_quoted("name~=|牛|", &[])]
#[case::escapes(r#"name~="asdf\n\tfooo""#, &[])]
#[case::leading_with_quoted(r#""leading quote".postquote==value"#, &[])]
#[case::quoted_regexp(r"name~=/foo\/bar/,name!=ff", &[])]
#[case::quoted_regexp_alt("name~=|^ba/?r$|", &[1, 3])]
// Kinds.
#[case::kind_committed("kind==committed", &[0, 2, 4, 5, 8, 9])]
#[case::kind_active("kind==active", &[1, 6, 7, 10])]
#[case::kind_view("kind==view", &[3, 11])]
#[case::kind_not_committed("kind!=committed", &[1, 3, 6, 7, 10, 11])]
#[case::kind_regex("kind~=^(view|active)$", &[1, 3, 6, 7, 10, 11])]
#[case::kind_case_sensitive("kind==Committed", &[])]
#[case::kind_present("kind", ALL)]
#[case::kind_rest_of_path_ignored("kind.whatever==view", &[3, 11])]
#[case::name_rest_of_path_ignored("name.x==bar", &[1, 3])]
// Parent: always present, "" without one.
#[case::parent_present("parent", ALL)]
#[case::parent_empty("parent==\"\"", &[0, 2, 4, 5, 6, 7, 8])]
#[case::parent_equal("parent==sha256:0123", &[10, 11])]
#[case::parent_regex("parent~=^$", &[0, 2, 4, 5, 6, 7, 8])]
// Labels: presence, dotted keys, empty values, maps without labels.
#[case::label_empty_value_present("labels.l", &[10])]
#[case::label_empty_value_equal("labels.l==\"\"", &[10])]
#[case::label_dotted_path("labels.a.b==c", &[9])]
#[case::label_dotted_quoted(r#"labels."a.b"==d"#, &[11])]
#[case::label_dotted_mixed(r#"labels."a".b"#, &[9, 11])]
#[case::label_quoted_unicode(r#"labels."é"==☃"#, &[11])]
#[case::labels_alone_is_key_empty("labels", &[])]
#[case::label_absent_not_equal("labels.foo!=true", &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])]
#[case::label_absent_regex_empty("labels.foo~=^$", &[1, 3, 4, 5, 6, 7, 9, 10, 11])]
#[case::label_absent_not_equal_empty(r#"labels.foo!="""#, &[0, 2, 8])]
// Unknown fields are never present; their value is "".
#[case::unknown_present("other", &[])]
#[case::unknown_equal_empty("other==\"\"", &[])]
#[case::unknown_not_equal("other!=x", ALL)]
#[case::unknown_regex_empty("other~=^$", ALL)]
#[case::field_may_start_with_digit("1st_field", &[])]
// Values: unquoted runs over punctuation (but not ","), quoting keeps ",", whitespace
// before tokens is skipped.
#[case::value_with_punctuation(r#"name==sha256:0123,parent==foo"#, &[9])]
#[case::value_with_quote_char(r#"name==a"b"#, &[])]
#[case::value_with_equals("labels.foo==a=b", &[])]
#[case::leading_space("  name==bar", &[1, 3])]
#[case::space_before_operator("name ==bar", &[1, 3])]
#[case::space_before_value("name==\t bar", &[1, 3])]
#[case::space_after_separator("name==bar, labels.bar", &[3])]
#[case::space_in_fieldpath("labels. foo", &[0, 2, 8])]
#[case::non_ascii_value("name~=é", &[])]
// Escapes in quoted strings.
#[case::escape_hex(r#"name=="\x62ar""#, &[1, 3])]
#[case::escape_octal(r#"name=="\142ar""#, &[1, 3])]
#[case::escape_u(r#"name=="\u0062ar""#, &[1, 3])]
#[case::escape_big_u(r#"name=="\U00000062ar""#, &[1, 3])]
#[case::escape_hex_utf8(r#"labels."\xc3\xa9"=="\u2603""#, &[11])]
#[case::escape_hex_not_utf8_never_equal(r#"name=="\xff""#, &[])]
#[case::escape_hex_not_utf8_always_differs(r#"name!="\xff""#, ALL)]
#[case::escape_hex_not_utf8_label_absent(r#"labels."\xff""#, &[])]
#[case::escape_slash_in_slash(r"name~=/^a\/?$/", &[10, 11])]
#[case::escape_pipe_in_pipe(r"name~=|^(bar\|baz)$|", &[1, 3, 6])]
#[case::escaped_backslash_in_regex(r"name~=/^sha\\d+/", &[9])]
#[case::escaped_backslash_in_regex2(r"name~=/^sha\\w+:\\d/", &[9])]
#[case::unquoted_regex_backslash(r"name~=^sha\w+:\d", &[9])]
fn selects(#[case] filter: &str, #[case] expected: &[usize]) {
    let f = Filter::parse(filter).unwrap_or_else(|e| panic!("{filter:?}: {e}"));
    assert_eq!(selected(&f), expected, "{filter:?}");
    let g: Filter = filter.parse().expect("FromStr");
    assert_eq!(selected(&g), expected, "{filter:?} via FromStr");
}

#[rstest]
// containerd filter_test.go failures (positions are containerd's).
#[case::no_alt_quoting_in_field("labels.|foo|==omg_asdf.asdf-qwer", 7, "invalid quote encountered")]
#[case::quoted_embed_invalid(
    r#"labels.?"more complex label with \\ and \"".post==present"#,
    7,
    r#"expected field, found "?""#
)]
#[case::trailing_comma("name==foo,", 10, "expected field, found end of input")]
#[case::trailing_field_separator("labels.", 7, "expected field, found end of input")]
#[case::missing_value("image~=,id?=?fbaq", 7, r#"expected value, found ",""#)]
#[case::field_quoted_not_terminated("labels.ns/key==value", 9, "quoted literal not terminated")]
#[case::value_quoted_not_terminated("labels.key==/value", 12, "quoted literal not terminated")]
// containerd scanner_test.go inputs that do not parse.
#[case::null_input("foo\0bar", 3, "unexpected null")]
#[case::spaces_chomped("foo = bar    ", 4, r#"unsupported operator "=""#)]
#[case::partial_input("interrupted=", 11, r#"unsupported operator "=""#)]
#[case::double_value(
    "doublevalue==value value",
    18,
    r#"expected "," or end of input, found " ""#
)]
#[case::missing_value2("input==,id!=ff", 7, r#"expected value, found ",""#)]
#[case::illegal_quoted("labels.containerd.io/key==value", 20, "quoted literal not terminated")]
#[case::illegal_quoted_newline(
    "labels.\"containerd.io\nkey\"==value",
    7,
    "quoted literal not terminated"
)]
#[case::illegal_escape(r#"labels."\g""#, 7, "illegal escape sequence")]
#[case::illegal_numeric_escape(r#"labels."\xaz""#, 7, "illegal numeric escape sequence")]
// Operators.
#[case::single_equals(
    "name=a",
    4,
    r#"unsupported operator "=", expected one of ("==", "!=" or "~=")"#
)]
#[case::triple_equals("name===a", 4, r#"unsupported operator "===""#)]
#[case::bang_value("name==!a", 4, r#"unsupported operator "==!""#)]
#[case::not_only("name!a", 4, r#"unsupported operator "!""#)]
#[case::dash_in_field(
    "labels.foo-bar==x",
    10,
    r#"expected operator ("==", "!=" or "~="), found "-""#
)]
#[case::slash_in_field("labels.containerd.io/gc.root", 20, "quoted literal not terminated")]
#[case::operator_first("==a", 0, r#"expected field, found "==""#)]
#[case::missing_operator_value(
    r#"name "a""#,
    5,
    r#"expected operator ("==", "!=" or "~="), found "\"a\"""#
)]
#[case::two_operators("name== ==a", 7, r#"expected value, found "==""#)]
// Values.
#[case::missing_value_at_end("name==", 6, "expected value, found end of input")]
#[case::missing_value_at_end_space("name== ", 7, "expected value, found end of input")]
#[case::value_starting_with_dot("name==.a", 6, r#"expected value, found ".""#)]
#[case::alt_quote_equal("name==/a/", 6, "invalid quote encountered")]
#[case::alt_quote_not_equal("name!=|a|", 6, "invalid quote encountered")]
#[case::quoted_then_more(r#"name=="a"b"#, 9, r#"expected "," or end of input, found "b""#)]
#[case::value_then_format_char(
    "name==a\u{200b}",
    7,
    r#"expected "," or end of input, found "\u{200b}""#
)]
#[case::value_then_unassigned("name==a\u{378}", 7, r#"expected "," or end of input"#)]
#[case::value_then_private_use("name==a\u{e000}", 7, r#"expected "," or end of input"#)]
#[case::replacement_char("name==a\u{fffd}", 7, "rune error")]
#[case::null_in_value("name==a\0", 7, "unexpected null")]
#[case::null_in_quoted("name==\"a\0\"", 6, "unexpected null")]
// Whitespace is skipped only before a token the parser asks for.
#[case::only_space(" ", 1, "expected field, found end of input")]
#[case::trailing_space_after_value("name==foo ", 9, r#"expected "," or end of input, found " ""#)]
#[case::space_before_comma_after_value(
    "name==foo ,name",
    9,
    r#"expected "," or end of input, found " ""#
)]
#[case::space_after_presence(
    "name ,labels.foo",
    5,
    r#"expected operator ("==", "!=" or "~="), found ",""#
)]
#[case::trailing_space_after_presence(
    "name ",
    5,
    r#"expected operator ("==", "!=" or "~="), found end of input"#
)]
#[case::empty_selector("name==a,,name", 8, r#"expected field, found ",""#)]
#[case::leading_comma(",name", 0, r#"expected field, found ",""#)]
#[case::double_dot("labels..a", 7, r#"expected field, found ".""#)]
#[case::other_char("n@me", 1, r#"expected operator ("==", "!=" or "~="), found "@""#)]
// Quoted strings.
#[case::unterminated_dquote(r#"labels."abc"#, 7, "quoted literal not terminated")]
#[case::backslash_at_end(r#"labels."abc\"#, 7, "illegal escape sequence")]
#[case::escaped_other_delimiter(r#"labels."a\|b""#, 7, "illegal escape sequence")]
#[case::escaped_dquote_in_slash(r#"name~=/a\"b/"#, 6, "illegal escape sequence")]
#[case::regex_escape_in_quotes(r"name~=/\d/", 6, "illegal escape sequence")]
#[case::short_hex(r#"labels."\x4""#, 7, "illegal numeric escape sequence")]
#[case::short_u(r#"labels."\u12""#, 7, "illegal numeric escape sequence")]
#[case::short_octal(r#"labels."\19""#, 7, "illegal numeric escape sequence")]
#[case::octal_too_big(
    r#"labels."\400""#,
    7,
    r"unquoting failed: octal escape \400 is above \377"
)]
#[case::big_u_too_big(
    r#"labels."\U00110000""#,
    7,
    r"unquoting failed: escape \U00110000 is beyond U+10FFFF"
)]
// Regular expressions are checked at parse time (containerd never matches instead).
#[case::bad_regex("name~=(", 6, r#"invalid regular expression "(": unclosed group"#)]
#[case::bad_regex_quoted("labels.x~=/a[/", 10, "invalid regular expression \"a[\"")]
#[case::regex_not_utf8(r#"name~="\xff""#, 6, "regular expression is not valid UTF-8")]
fn refuses(#[case] filter: &str, #[case] pos: usize, #[case] reason: &str) {
    let msg = message(Filter::parse(filter).expect_err(filter));
    let head = format!("filter {filter:?} at {pos}: ");
    assert!(
        msg.starts_with(&head),
        "{msg:?} does not start with {head:?}"
    );
    assert!(msg.contains(reason), "{msg:?} does not contain {reason:?}");
}

#[test]
fn error_message_is_exact() {
    let err = Filter::parse("name==").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid argument: filter "name==" at 6: expected value, found end of input"#
    );
    assert_eq!(
        message(Filter::parse("labels.|foo|==x").unwrap_err()),
        r#"filter "labels.|foo|==x" at 7: invalid quote encountered: "/" and "|" may quote only the value of "~=""#
    );
}

#[test]
fn empty_filters_select_everything() {
    let none: [&str; 0] = [];
    for f in [
        Filter::parse_all(&none).unwrap(),
        Filter::parse("").unwrap(),
        Filter::parse_all(&["name==nothing", ""]).unwrap(),
    ] {
        assert!(f.is_always());
        assert_eq!(selected(&f), ALL);
    }
    assert!(!Filter::parse("name").unwrap().is_always());
    assert!(!Filter::parse_all(&["name==a", "name==b"])
        .unwrap()
        .is_always());
}

#[rstest]
#[case::or_of_names(&["name==foo", "name==bar"], &[0, 1, 2, 3])]
#[case::or_of_ands(&["name==bar,kind==view", "kind==active,labels.other"], &[3, 6, 7])]
#[case::or_with_nothing(&["name==nothing", "labels.l"], &[10])]
#[case::single(&["kind==view"], &[3, 11])]
fn parse_all_ors(#[case] filters: &[&str], #[case] expected: &[usize]) {
    let f = Filter::parse_all(filters).unwrap();
    assert_eq!(selected(&f), expected);
    let owned: Vec<String> = filters.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(selected(&Filter::parse_all(&owned).unwrap()), expected);
}

#[test]
fn parse_all_fails_on_any_bad_string() {
    let msg = message(Filter::parse_all(&["name==a", "name==", "name==b"]).unwrap_err());
    assert_eq!(
        msg,
        r#"filter "name==" at 6: expected value, found end of input"#
    );
}

#[test]
fn surrogate_escape_becomes_replacement_character() {
    // Go's utf8.EncodeRune writes U+FFFD for a surrogate.
    let f = Filter::parse(r#"name=="\ud800""#).unwrap();
    assert!(f.matches(&info("\u{fffd}", Kind::Active, None, &[])));
    assert!(!f.matches(&info("\u{d7ff}", Kind::Active, None, &[])));
}

#[test]
fn control_character_may_start_a_value() {
    // The scanner takes any character that starts no other token as a value's first one.
    let f = Filter::parse("name==\u{1}").unwrap();
    assert!(f.matches(&info("\u{1}", Kind::Active, None, &[])));
}

#[test]
fn escapes_decode_like_go() {
    let f = Filter::parse(r#"labels."\a\b\f\n\r\t\v\\\"x"=="\101\x42\u0043\U0001F600""#).unwrap();
    let key = "\u{7}\u{8}\u{c}\n\r\t\u{b}\\\"x";
    assert!(f.matches(&info("n", Kind::Active, None, &[(key, "ABC😀")])));
    assert!(!f.matches(&info("n", Kind::Active, None, &[(key, "ABC")])));
}

#[test]
fn clones_match_alike() {
    let f = Filter::parse_all(&["name~=^ba", "labels.foo==true"]).unwrap();
    let g = f.clone();
    assert_eq!(selected(&f), selected(&g));
    assert_eq!(selected(&g), &[0, 1, 3, 6, 7]);
}

/// Checks the contract on any input: Ok, or InvalidArgument naming the input and a byte
/// position inside it (or at its end); and matching never panics.
fn check_total(input: &str) {
    match Filter::parse(input) {
        Ok(f) => {
            for i in corpus() {
                f.matches(&i);
            }
        }
        Err(e) => {
            let msg = message(e);
            let head = format!("filter {input:?} at ");
            let rest = msg.strip_prefix(&head).unwrap_or_else(|| panic!("{msg:?}"));
            let pos: usize = rest.split(':').next().unwrap().parse().unwrap();
            assert!(pos <= input.len() && input.is_char_boundary(pos), "{msg:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_string_parses_or_is_invalid_argument(s in any::<String>()) {
        check_total(&s);
    }

    #[test]
    fn grammar_alphabet_parses_or_is_invalid_argument(
        s in r#"[a-zA-Z0-9.,=!~"/|\\ _]{0,40}"#
    ) {
        check_total(&s);
    }

    #[test]
    fn selector_shaped_strings_parse_or_are_invalid_argument(
        parts in prop::collection::vec(
            prop_oneof![
                Just("name".to_owned()), Just("labels".to_owned()), Just("kind".to_owned()),
                Just(".".to_owned()), Just(",".to_owned()), Just("==".to_owned()),
                Just("!=".to_owned()), Just("~=".to_owned()), Just("\"".to_owned()),
                Just("/".to_owned()), Just("|".to_owned()), Just("\\".to_owned()),
                Just(" ".to_owned()), r"[a-z0-9\\x]{1,3}",
            ],
            0..12,
        )
    ) {
        check_total(&parts.concat());
    }
}
