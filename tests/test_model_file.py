from pathlib import Path

from click.testing import CliRunner

from connector.cli import cli
from connector.model.loader import DEFAULT_MODEL_PATH, load_model, validate_model_file


def test_default_model_loads_with_stable_fingerprint() -> None:
    a = load_model()
    b = load_model(DEFAULT_MODEL_PATH)
    assert a.version == "2026.12-default"
    assert a.fingerprint == b.fingerprint
    assert len(a.fingerprint) == 12


def test_broken_model_lists_every_problem_with_location(tmp_path: Path) -> None:
    (tmp_path / "titles.yaml").write_text((DEFAULT_MODEL_PATH.parent / "titles.yaml").read_text())
    bad = tmp_path / "model.yaml"
    bad.write_text(
        """
version: "x"
lists: {careers: ["*/careers*"]}
fit:
  grades: {A: 10, B: 40, C: 20}
  rules:
    - {name: t, when: {seniority: vp}, points: "lots"}
engagement:
  categories: {c: {}}
  rules:
    - {name: a, category: c, event: page_view, points: 5}
    - {name: b, category: nope, event: page_view, points: 5, when: {url: {in_list: missing}}}
    - {name: c, category: c, event: page_view, points: 1.5}
    - {name: d, category: c, event: page_view, pionts: 1}
"""
    )
    loaded, problems = validate_model_file(bad)
    assert loaded is None
    joined = "\n".join(problems)
    assert "fit.rules[0].points: must be an integer" in joined
    assert "engagement.rules[2].points: must be an integer" in joined
    assert "engagement.rules[3].pionts: unknown key (did you mean 'points'?)" in joined
    assert "fit.grades: grade minimums must descend A > B > C, got A=10 B=40 C=20" in joined
    assert "engagement.rules[1].category: unknown category 'nope'" in joined
    assert "engagement.rules[1].when.url.in_list: unknown list 'missing'" in joined
    assert len(problems) == 6, problems
    result = CliRunner().invoke(cli, ["validate-model", str(bad)])
    assert result.exit_code == 1
    assert "nothing scored" in result.output


def test_validate_model_ok_prints_version_and_fingerprint() -> None:
    result = CliRunner().invoke(cli, ["validate-model"])
    assert result.exit_code == 0, result.output
    loaded = load_model()
    assert result.output.strip() == f"OK {loaded.version} {loaded.fingerprint}"


TITLES = """seniority:
  - {name: student, pattern: "student", seniority: student, flags: [student]}
  - {name: seeker, pattern: "open to work", seniority: none, flags: [job_seeker]}
  - {name: manager, pattern: "manager", seniority: manager}
department:
  - {name: marketing, pattern: "marketing", department: marketing}
  - {name: sales, pattern: "sales", department: sales}
"""

MODEL = """version: "typos"
lists:
  pricing_pages: ["*/pricing*"]
  product_pages: ["*/product*"]
fit:
  rules:
    - {name: title_manager, when: {seniority: manager}, points: 15}
    - {name: corporate_email, when: {email_kind: corporate}, points: 5}
engagement:
  categories: {product: {}, frequency: {}}
  rules:
    - {name: product_page, category: product, event: page_view, points: 10,
       when: {url: {in_list: product_pages}}}
    - name: pricing_twice
      category: frequency
      event: page_view
      when: {url: {in_list: pricing_pages}}
      frequency: {count: 2, within_days: 7}
      points: 25
"""


def _write(tmp_path: Path, model: str) -> Path:
    (tmp_path / "titles.yaml").write_text(TITLES, encoding="utf-8")
    path = tmp_path / "model.yaml"
    path.write_text(model, encoding="utf-8")
    return path


def _edited(tmp_path: Path, was: str, now: str) -> Path:
    assert MODEL.count(was) == 1, was
    return _write(tmp_path, MODEL.replace(was, now))


def test_the_model_the_typo_tests_edit_is_valid(tmp_path: Path) -> None:
    loaded, problems = validate_model_file(_write(tmp_path, MODEL))
    assert problems == []
    assert loaded is not None and loaded.version == "typos"


def test_a_typo_in_an_event_type_is_named_with_its_line_and_rule(tmp_path: Path) -> None:
    path = _edited(tmp_path, "event: page_view\n", "event: page_veiw\n")
    loaded, problems = validate_model_file(path)
    assert loaded is None
    assert problems == [
        "line 16 (rule pricing_twice): engagement.rules[1].event: unknown event type "
        "'page_veiw' (did you mean 'page_view'?)"
    ]


def test_a_typo_in_a_condition_key_is_named_with_the_keys_of_its_event_type(
    tmp_path: Path,
) -> None:
    path = _edited(
        tmp_path, "when: {url: {in_list: product_pages}}", "when: {ulr: {in_list: product_pages}}"
    )
    _, problems = validate_model_file(path)
    assert problems == [
        "line 13 (rule product_page): engagement.rules[0].when.ulr: unknown condition key 'ulr' "
        "for page_view events (did you mean 'url'?); known: referrer, title, url"
    ]


def test_a_typo_in_an_enumerated_value_is_named_with_the_known_values(tmp_path: Path) -> None:
    path = _edited(tmp_path, "when: {seniority: manager}", "when: {seniority: manger}")
    result = CliRunner().invoke(cli, ["validate-model", str(path)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{path}: line 7 (rule title_manager): fit.rules[0].when.seniority: unknown seniority "
        "'manger' (did you mean 'manager'?); known: executive, vp, director, manager, senior, "
        "individual, entry, student, none, unknown",
        "1 problem(s) in the model file; nothing scored.",
    ]
    # and a preview with it refuses to run, rather than showing MQLs fall
    preview = CliRunner().invoke(cli, ["rescore", "--dry-run", "--model", str(path)])
    assert preview.exit_code == 2  # a bad model is a configuration error (exit 2)
    assert "unknown seniority 'manger'" in preview.output


def test_known_values_come_from_the_event_types_the_fit_facts_and_the_title_table(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path,
        """version: "v"
fit:
  rules:
    - {name: dept, when: {department: [marketing, marketting]}, points: 1}
    - {name: kind, when: {email_kind: {not: {any: [free, freemail]}}}, points: 1}
    - {name: size, when: {employes: {min: 10}}, points: 1}
    - {name: patterns_pass, when: {seniority: {regex: "manag"}, department: {exists: true}},
       points: 1}
  force:
    - {name: flag, when: {title_flags: studnet}, grade: D}
engagement:
  categories: {c: {}}
  rules:
    - name: webinar
      category: c
      event: webinar_attended
      tiers:
        - {when: {watched_shar: {min: 0.9}}, points: 5, label: full}
        - {points: 1, label: part}
    - {name: several, category: c, event: [email_click, emial_open], points: 1}
    - {name: anything_custom, category: c, event: custom, when: {booth: "B12"}, points: 1}
    - {name: click_campaign, category: c, event: [email_click, email_open],
       when: {campaign: {glob: "*launch*"}}, points: 1}
""",
    )
    _, problems = validate_model_file(path)
    assert problems == [
        "line 4 (rule dept): fit.rules[0].when.department[1]: unknown department 'marketting' "
        "(did you mean 'marketing'?); known: marketing, sales",
        "line 5 (rule kind): fit.rules[1].when.email_kind.not.any[1]: unknown email_kind "
        "'freemail' (did you mean 'free'?); known: corporate, free, disposable, invalid, "
        "missing, unknown",
        "line 6 (rule size): fit.rules[2].when.employes: unknown condition key 'employes' for a "
        "fit rule (did you mean 'employee_count'?)",
        "line 10 (rule flag): fit.force[0].when.title_flags: unknown title_flags 'studnet' "
        "(did you mean 'student'?); known: job_seeker, student",
        "line 18 (rule webinar): engagement.rules[0].tiers[0].when.watched_shar: unknown "
        "condition key 'watched_shar' for webinar_attended events (did you mean "
        "'watched_share'?); known: minutes_watched, name, watched_share",
        "line 20 (rule several): engagement.rules[1].event[1]: unknown event type 'emial_open' "
        "(did you mean 'email_open'?)",
    ]


def test_the_vocabulary_is_what_the_engine_and_the_adapters_use() -> None:
    from connector.model.vocabulary import FIT_FIELDS
    from connector.scoring.engine import _fit_facts, compile_model
    from connector.types import EVENT_ATTRIBUTES, EVENT_TYPES, Contact

    assert tuple(EVENT_ATTRIBUTES) == EVENT_TYPES
    facts = _fit_facts(compile_model(load_model()), Contact("1", email="a@b.com"), None)
    assert {k for k in facts if not k.startswith("_")} | {"fired"} == set(FIT_FIELDS)


def test_a_copy_of_the_model_without_its_titles_uses_the_shipped_rules_and_says_so(
    tmp_path: Path,
) -> None:
    from connector.model.loader import DEFAULT_TITLES_PATH

    copy = tmp_path / "model.yaml"
    copy.write_text(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    loaded, problems = validate_model_file(copy)
    assert problems == [] and loaded is not None
    note = (
        f"title_rules: no titles.yaml next to the model (looked at {tmp_path / 'titles.yaml'}); "
        f"using the shipped title rules ({DEFAULT_TITLES_PATH}). To edit them, copy that file "
        "there or run `leadscore init-model DIR`"
    )
    assert loaded.notes == (note,)
    assert loaded.fingerprint == load_model().fingerprint  # the same rules, the same model
    result = CliRunner().invoke(cli, ["validate-model", str(copy)])
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        f"{copy}: warning: {note}",
        f"OK {loaded.version} {loaded.fingerprint}",
    ]
    # beside its own titles.yaml, the copy uses that one, silently
    shipped = DEFAULT_TITLES_PATH.read_text(encoding="utf-8")
    assert shipped.count("\nseniority:\n") == 1
    (tmp_path / "titles.yaml").write_text(
        shipped.replace(
            "\nseniority:\n",
            '\nseniority:\n  - {name: analyst, pattern: "analyst", seniority: vp}\n',
        ),
        encoding="utf-8",
    )
    own, _ = validate_model_file(copy)
    assert own is not None and own.notes == ()
    assert own.titles.classify("Data Analyst").seniority == "vp"
    assert loaded.titles.classify("Data Analyst").seniority == "individual"


def test_a_missing_title_rule_file_named_by_the_model_is_a_problem_saying_where_and_what(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path, MODEL.replace('version: "typos"\n', 'version: "t"\ntitle_rules: my.yaml\n')
    )
    _, problems = validate_model_file(path)
    assert problems == [
        f"line 2: title_rules: no title rule file at {tmp_path / 'my.yaml'} (title_rules "
        "'my.yaml' is relative to the model's folder): put the file there or fix title_rules; "
        "`leadscore init-model DIR` writes a model with its titles.yaml"
    ]


def test_a_typo_in_the_title_rules_is_named_with_its_line_and_rule(tmp_path: Path) -> None:
    path = _write(tmp_path, MODEL)
    (tmp_path / "titles.yaml").write_text(
        TITLES.replace("seniority: manager}", "seniority: manger}"), encoding="utf-8"
    )
    _, problems = validate_model_file(path)
    assert problems == [
        "title_rules: titles.yaml: line 4 (rule manager): seniority[2].seniority: unknown "
        "seniority 'manger' (did you mean 'manager'?); one of executive, vp, director, manager, "
        "senior, individual, entry, student, none, unknown"
    ]


def test_an_unknown_key_says_which_key_it_may_have_meant_at_its_own_level(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path,
        """version: x
fti: {}
fit:
  rules:
    - {name: a, when: {seniority: {globb: "x*"}}, points: 1, descripton: d}
    - {name: b, when: {seniority: {}}, points: 1}
engagement:
  decay: {mode: none, halflife_days: 3}
lifecycle: {mql: {treshold: 50}, zzz: 1}
""",
    )
    _, problems = validate_model_file(path)
    assert problems == [
        "line 5 (rule a): fit.rules[0].when.seniority.globb: unknown key (did you mean 'glob'?)",
        "line 5 (rule a): fit.rules[0].descripton: unknown key (did you mean 'description'?)",
        "line 6 (rule b): fit.rules[1].when.seniority: a match needs one of "
        "any/glob/regex/words/in_list/min/max/...",
        "line 8: engagement.decay.halflife_days: unknown key (did you mean 'half_life_days'?)",
        "line 9: lifecycle.mql.treshold: unknown key (did you mean 'threshold'?)",
        "line 9: lifecycle.zzz: unknown key (typo?)",
        "line 2: fti: unknown key (did you mean 'fit'?)",
    ]


def test_every_unknown_rule_of_a_list_is_named_with_its_index(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        MODEL
        + """    - {name: meeting_booked, category: frequency, event: meeting_booked, points: 0,
       sales_signal: true}
lifecycle:
  sql: {events: [meeting_bookd, pricing_twice, deal_opend]}
""",
    )
    _, problems = validate_model_file(path)
    assert problems == [
        "line 23: lifecycle.sql.events[0]: unknown engagement rule 'meeting_bookd' (did you "
        "mean 'meeting_booked'?)",
        "line 23: lifecycle.sql.events[2]: unknown engagement rule 'deal_opend'",
    ]


def test_a_suggested_model_from_a_copy_without_titles_falls_back_the_same_way(
    tmp_path: Path,
) -> None:
    from connector.calibrate.suggest import write_suggested

    copy = tmp_path / "model.yaml"
    copy.write_text(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    model = load_model(copy)
    out = tmp_path / "out" / "suggested.yaml"
    loaded = write_suggested(model, {("version",): "2026.12-cal"}, out)
    text = out.read_text(encoding="utf-8")
    assert "\ntitle_rules: titles.yaml\n" in text  # not pinned to the installed package
    assert loaded.version == "2026.12-cal"
    assert loaded.notes and "looked at " + str(out.parent / "titles.yaml") in loaded.notes[0]


def test_an_empty_words_group_is_a_model_error_with_its_location(tmp_path: Path) -> None:
    (tmp_path / "titles.yaml").write_text((DEFAULT_MODEL_PATH.parent / "titles.yaml").read_text())
    bad = tmp_path / "model.yaml"
    bad.write_text(
        """
version: "x"
fit:
  grades: {A: 80, B: 55, C: 25}
  rules: []
engagement:
  categories: {c: {}}
  rules:
    - {name: a, category: c, event: form_submit, points: 5, when: {form: {words: [[book], []]}}}
"""
    )
    loaded, problems = validate_model_file(bad)
    assert loaded is None
    assert len(problems) == 1, problems
    assert problems == [
        "line 9 (rule a): engagement.rules[0].when.form.words: every words group needs at least "
        "one non-empty word"
    ]
