"""`hotline nlu add|import|check`: trainers' examples, checked as they go in."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from hotline.core.settings import Settings, get_settings
from hotline.trainer.nlu_data import AddReport, NluData, read_examples_file
from hotline.trainer.training import rasa_env


def nlu_data(settings: Settings) -> NluData:
    root = settings.project_root
    return NluData(root / "data" / "nlu", root / "bot" / "domain.yml")


def print_add_report(report: AddReport) -> int:
    for intent, suggestions in report.unknown.items():
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        print(f"refused: unknown intent '{intent}'{hint}", file=sys.stderr)
    for intent, text in report.added:
        print(f"added    {intent}: {text}")
    for intent, text in report.duplicates:
        print(f"exists   {intent}: {text}")
    for text, wanted, owner in report.conflicts:
        print(f"refused  {text}: already an example of '{owner}', not '{wanted}'", file=sys.stderr)
    if report.empty:
        print(f"skipped  {report.empty} empty example(s)")
    print(f"{len(report.added)} added, {len(report.duplicates)} already there, "
          f"{len(report.conflicts)} claimed by another intent")
    return 2 if report.unknown else 0


def cmd_nlu_add(settings: Settings, intent: str, texts) -> int:
    data = nlu_data(settings)
    report = data.add(intent, texts)
    data.save()
    return print_add_report(report)


def cmd_nlu_import(settings: Settings, path: Path) -> int:
    try:
        rows = read_examples_file(path)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    data = nlu_data(settings)
    total = AddReport()
    for intent in dict.fromkeys(intent for _, intent in rows):
        report = data.add(intent, [text for text, i in rows if i == intent])
        total.added += report.added
        total.duplicates += report.duplicates
        total.conflicts += report.conflicts
        total.unknown.update(report.unknown)
        total.empty += report.empty
    data.save()
    return print_add_report(total)


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def cmd_nlu_check(settings: Settings, as_json: bool, min_examples: int, skip_rasa: bool) -> int:
    findings = nlu_data(settings).check(min_examples=min_examples)
    rasa_ok = True
    if not skip_rasa:
        root = settings.project_root
        result = subprocess.run([sys.executable, "-m", "rasa", "data", "validate", "--domain", str(root / "bot/domain.yml"),
                                 "--data", str(root / "data/nlu"), str(root / "bot/data"),
                                 "--config", str(root / "bot/config.yml")],
                                cwd=root, env=rasa_env(), capture_output=True, text=True)
        rasa_ok = result.returncode == 0
        # Trainers read these: Rasa's findings without colour codes, Python's own warnings left out.
        plain = ANSI_ESCAPE.sub("", result.stdout + result.stderr)
        findings["rasa_data_validate"] = [line.strip() for line in plain.splitlines()
                                          if ("WARNING" in line or "ERROR" in line) and "Warning:" not in line][:50]
    problems = sum(len(v) for k, v in findings.items() if k != "rasa_data_validate") + (0 if rasa_ok else 1)
    if as_json:
        print(json.dumps({"ok": problems == 0, **findings}, ensure_ascii=False, indent=1))
    else:
        for kind, items in findings.items():
            print(f"{kind}: {len(items)}")
            for item in items[:20]:
                print(f"  {json.dumps(item, ensure_ascii=False)}")
        print("ok" if problems == 0 else f"{problems} finding(s)")
    return 0 if problems == 0 else 1


def cmd_nlu(args) -> int:
    settings = get_settings()
    if args.action == "add":
        return cmd_nlu_add(settings, args.intent, args.examples)
    if args.action == "import":
        return cmd_nlu_import(settings, Path(args.file))
    return cmd_nlu_check(settings, args.json, args.min_examples, args.skip_rasa)


def register(sub) -> None:
    nlu_cmd = sub.add_parser("nlu", help="trainers: add, import and check training examples")
    nlu_sub = nlu_cmd.add_subparsers(dest="action", required=True)
    add = nlu_sub.add_parser("add", help='append examples: hotline nlu add INTENT "例句" …')
    add.add_argument("intent")
    add.add_argument("examples", nargs="+")
    imp = nlu_sub.add_parser("import", help="append examples from a TSV/CSV with columns text, intent")
    imp.add_argument("file")
    check = nlu_sub.add_parser("check", help="rasa data validate plus the project's data checks")
    check.add_argument("--json", action="store_true")
    check.add_argument("--min-examples", type=int, default=20)
    check.add_argument("--skip-rasa", action="store_true", help="only the project's own checks")
    nlu_cmd.set_defaults(func=cmd_nlu)
