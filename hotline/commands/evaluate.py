"""`hotline eval nlu|speech|spoken`: the trained model on a file, k-fold, under noise; recordings
through Whisper (and the NLU model for `spoken`), in-process."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict

from hotline.core.settings import Settings, get_settings
from hotline.speech_eval import corpus_cer, load_stt, read_manifest, transcribe_manifest


def cmd_eval_nlu(args) -> int:
    from hotline.trainer.evaluation import evaluate_nlu, format_report
    from hotline.trainer.reports import compare, cross_validate, load_report, save_report

    settings = get_settings()
    if not args.file and not args.cross_validation:
        print("error: give a TSV file or --cross-validation", file=sys.stderr)
        return 2
    try:
        old = load_report(Path(args.compare)) if args.compare else None
        if args.cross_validation:
            report = cross_validate(settings, folds=args.folds)
        else:
            report = evaluate_nlu(settings, Path(args.file), noise_seed=args.noise, spoken_seed=args.spoken)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if old is not None:
        report["compared"] = compare(report, old)
    if args.report:
        save_report(report, Path(args.report), old)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return 0
    print(format_report(report))
    if old is not None:
        diff = report["compared"]
        print(f"\ncompared with {args.compare}: accuracy {diff['accuracy_delta']:+.3f}, "
              f"macro-F1 {diff['macro_f1_delta']:+.3f}")
        for row in diff["per_intent"]:
            if row["delta"]:
                print(f"  {row['intent']:<24} F1 {row['f1_before']:.3f} → {row['f1_after']:.3f} ({row['delta']:+.3f})")
    if args.report:
        print(f"\nreport saved in {args.report}/ (report.json, summary.md, confusion_matrix.png)")
    return 0


def eval_speech(settings: Settings, manifest: Path, as_json: bool, spoken: bool, band: str = "wide") -> int:
    reference_column = "text" if spoken else "transcript"
    try:
        rows = read_manifest(manifest, ["file", reference_column] + (["intent"] if spoken else []))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    predictions = transcribe_manifest(load_stt(settings), manifest, rows, reference_column, band)
    if spoken:
        from hotline.trainer.evaluation import classify, load_agent, score

        agent = load_agent(settings)
        # Empty or punctuation-only transcripts are classified too (as out_of_scope): no crash, and
        # they count against accuracy as a caller who was not understood.
        for item, row, parsed in zip(predictions, rows, classify(agent, [p["hypothesis"] for p in predictions])):
            item["intent"] = row["intent"]
            item.update(predicted=parsed["predicted"], confidence=parsed["confidence"])
    report: Dict[str, object] = {"cer": corpus_cer(predictions), "n": len(rows), "band": band}
    if spoken:
        scores = score([p["intent"] for p in predictions], [p["predicted"] for p in predictions])
        report.update(accuracy=scores["accuracy"], macro_f1=scores["macro_f1"])
    for item in predictions:
        del item["edits"], item["chars"]
    report["predictions"] = predictions
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        head = f"n={report['n']}  band={band}  CER={report['cer']:.3f}"
        if spoken:
            head += f"  intent accuracy={report['accuracy']:.3f}  macro-F1={report['macro_f1']:.3f}"
        print(head)
        for p in predictions:
            extra = f"  → {p['predicted']} ({p['confidence']:.2f}) expected {p['intent']}" if spoken else ""
            print(f"  {p['file']}: CER {p['cer']:.3f}  「{p['hypothesis']}」{extra}")
    return 0


def cmd_eval_speech(args) -> int:
    return eval_speech(get_settings(), Path(args.manifest), args.json, spoken=False, band=args.band)


def cmd_eval_spoken(args) -> int:
    return eval_speech(get_settings(), Path(args.manifest), args.json, spoken=True, band=args.band)


def register(sub) -> None:
    evaluate = sub.add_parser("eval", help="evaluate the models")
    eval_sub = evaluate.add_subparsers(dest="what", required=True)
    nlu = eval_sub.add_parser("nlu", help="intent accuracy on a TSV file (header: text<TAB>intent)")
    nlu.add_argument("file", nargs="?")
    nlu.add_argument("--cross-validation", action="store_true", help="k-fold CV on the training data instead")
    nlu.add_argument("--folds", type=int, default=5)
    nlu.add_argument("--report", help="save report.json, summary.md and confusion_matrix.png in this folder")
    nlu.add_argument("--compare", help="an earlier report folder (or report.json): show per-intent changes")
    nlu.add_argument("--noise", type=int, metavar="SEED",
                     help="pass each text through recogniser-like noise (homophones, no punctuation…) first")
    nlu.add_argument("--spoken", type=int, metavar="SEED",
                     help="simulate speech recognition first, with the error model learned from real Whisper "
                          "output (data/recognition_errors.json)")
    nlu.add_argument("--json", action="store_true")
    nlu.set_defaults(func=cmd_eval_nlu)
    for name, help_text, func in (
            ("speech", "character error rate on recordings (header: file<TAB>transcript)", cmd_eval_speech),
            ("spoken", "spoken intent accuracy (header: file<TAB>text<TAB>intent)", cmd_eval_spoken)):
        recordings = eval_sub.add_parser(name, help=help_text)
        recordings.add_argument("manifest")
        recordings.add_argument("--json", action="store_true")
        recordings.add_argument("--band", choices=["wide", "phone"], default="wide",
                                help="phone: pass the audio through an 8 kHz μ-law line first")
        recordings.set_defaults(func=func)
