"""The `hotline` command: the front door for operators, trainers and developers."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from hotline.core.settings import Settings, get_settings


def cmd_setup(args) -> int:
    from actions.records.client import SqlRecordsClient
    from actions.records.seed import seed
    from hotline.trainer.training import train

    from voice_gateway.stt import ensure_whisper_model

    settings = get_settings()
    train(settings)
    added = seed(SqlRecordsClient(settings.resolved_database_url()))
    print(f"records ready ({added} demo rows added): {settings.resolved_database_url()}")
    if settings.stt_model_dir is None:
        print(f"speech model ready: {ensure_whisper_model(settings.whisper_dir)}")
    return 0


def cmd_train(args) -> int:
    from hotline.trainer.training import train

    train(get_settings(), force=args.force)
    return 0


def cmd_seed(args) -> int:
    from actions.records.client import SqlRecordsClient
    from actions.records.seed import seed

    settings = get_settings()
    added = seed(SqlRecordsClient(settings.resolved_database_url()))
    print(f"{added} demo rows added to {settings.resolved_database_url()}")
    return 0


def cmd_run(args) -> int:
    from hotline.launcher import Stack

    if not args.skip_setup:
        cmd_setup(args)
    settings = get_settings()
    started = time.monotonic()
    stack = Stack(settings)
    stack.start()
    print(f"ready in {time.monotonic() - started:.1f} s")
    print(f"  Rasa server:    {settings.rasa_url}  (loopback only; API token in var/rasa_token)")
    print(f"  action server:  {settings.action_url}  (loopback only; Rasa's token in var/action_token)")
    print(f"  voice gateway:  {settings.gateway_url}  (chat widget /, API docs /docs, readiness /readyz)")
    print(f"  phone:          Twilio WS {settings.gateway_url.replace('http', 'ws')}/twilio/media-stream, "
          f"AudioSocket tcp://{settings.host}:{settings.audiosocket_port}")
    print(f"  logs:           {stack.logs_dir}")
    print("talk to it:      .venv/bin/hotline chat      (Ctrl-C here stops the servers)", flush=True)
    return run_until_stopped(stack)


def run_until_stopped(stack) -> int:
    """Wait for Ctrl-C or SIGTERM (a crashed server is restarted meanwhile), then stop the stack."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        while not stopping and not stack.gave_up:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    if stack.gave_up:
        print(f"stopped: {stack.gave_up}", file=sys.stderr)
        return 1
    return 0


def cmd_serve(args) -> int:
    from hotline.serve import serve

    return serve(args.role, get_settings())


def cmd_cluster(args) -> int:
    from hotline.cluster import Cluster

    if not args.skip_setup:
        cmd_setup(args)
    settings = get_settings()
    started = time.monotonic()
    cluster = Cluster(settings, replicas=args.replicas, gateway=not args.no_gateway)
    cluster.start()
    print(f"ready in {time.monotonic() - started:.1f} s: {args.replicas} of each role behind HAProxy")
    print(f"  voice gateway:  {settings.gateway_url}  (HAProxy; AudioSocket tcp://{settings.host}:{settings.audiosocket_port})")
    for role in cluster.replicas:
        print(f"  {role + ':':<15} {', '.join(cluster.replica_urls(role))}")
    print(f"  HAProxy config: {settings.var_dir / 'haproxy.cfg'}   logs: {cluster.logs_dir}", flush=True)
    return run_until_stopped(cluster)


def cmd_chat(args) -> int:
    from hotline.chat import chat

    return chat(get_settings(), sender=args.sender)


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


def cmd_call(args) -> int:
    from hotline.voice_cli import call

    return call(get_settings(), Path(args.file), args.out, args.session)


def cmd_eval_speech(args) -> int:
    from hotline.voice_cli import eval_speech

    return eval_speech(get_settings(), Path(args.manifest), args.json, spoken=False, band=args.band)


def cmd_eval_spoken(args) -> int:
    from hotline.voice_cli import eval_speech

    return eval_speech(get_settings(), Path(args.manifest), args.json, spoken=True, band=args.band)


def cmd_voices_download(args) -> int:
    from voice_gateway.tts import download_voice

    settings = get_settings()
    try:
        path = download_voice(args.name, settings.voices_dir)
    except OSError as error:
        print(f"download failed ({error}); place {args.name}.onnx and .onnx.json in {settings.voices_dir} "
              "or set TTS_VOICE to their path", file=sys.stderr)
        return 1
    print(f"voice ready: {path}")
    return 0


def cmd_nlu(args) -> int:
    from hotline import trainer_cli

    settings = get_settings()
    if args.action == "add":
        return trainer_cli.cmd_nlu_add(settings, args.intent, args.examples)
    if args.action == "import":
        return trainer_cli.cmd_nlu_import(settings, Path(args.file))
    return trainer_cli.cmd_nlu_check(settings, args.json, args.min_examples, args.skip_rasa)


def cmd_inbox(args) -> int:
    from hotline import trainer_cli

    if args.action == "label":
        return trainer_cli.cmd_inbox_label(get_settings(), args.id, args.intent)
    return trainer_cli.cmd_inbox(get_settings(), args.json)


def cmd_purge(args) -> int:
    import datetime as dt

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from hotline.purge import parse_age, purge_conversations

    url = get_settings().resolved_tracker_store_url()
    try:
        result = purge_conversations(url, parse_age(args.older_than), dry_run=args.dry_run)
    except (ValueError, SQLAlchemyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cutoff = dt.datetime.fromtimestamp(result.cutoff, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {result.conversations} conversation(s), {result.events} event(s), silent since before {cutoff}, "
          f"from {make_url(url).render_as_string(hide_password=True)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description="Apple 400 hotline assistant")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train if needed, seed the records, start the servers")
    run.add_argument("--skip-setup", action="store_true", help="start without checking the model and records")
    run.set_defaults(func=cmd_run)
    sub.add_parser("setup", help="train if needed and seed the records").set_defaults(func=cmd_setup)
    serve = sub.add_parser("serve", help="run one role in the foreground, configured by the environment (containers)")
    serve.add_argument("role", choices=["rasa", "actions", "gateway"])
    serve.set_defaults(func=cmd_serve)
    cluster = sub.add_parser("cluster", help="N replicas of each server behind HAProxy, on PostgreSQL and Redis")
    cluster.add_argument("--replicas", type=int, default=2)
    cluster.add_argument("--no-gateway", action="store_true", help="Rasa and action servers only")
    cluster.add_argument("--skip-setup", action="store_true", help="start without checking the model and records")
    cluster.set_defaults(func=cmd_cluster)
    train = sub.add_parser("train", help="retrain when data or config changed")
    train.add_argument("--force", action="store_true")
    train.set_defaults(func=cmd_train)
    sub.add_parser("seed", help="create the records schema and demo rows").set_defaults(func=cmd_seed)
    chat = sub.add_parser("chat", help="talk to the running bot in the terminal")
    chat.add_argument("--sender", help="conversation id (default: a new one)")
    chat.set_defaults(func=cmd_chat)

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
    speech = eval_sub.add_parser("speech", help="character error rate on recordings (header: file<TAB>transcript)")
    speech.add_argument("manifest")
    speech.add_argument("--json", action="store_true")
    speech.add_argument("--band", choices=["wide", "phone"], default="wide",
                        help="phone: pass the audio through an 8 kHz μ-law line first")
    speech.set_defaults(func=cmd_eval_speech)
    spoken = eval_sub.add_parser("spoken", help="spoken intent accuracy (header: file<TAB>text<TAB>intent)")
    spoken.add_argument("manifest")
    spoken.add_argument("--json", action="store_true")
    spoken.add_argument("--band", choices=["wide", "phone"], default="wide",
                        help="phone: pass the audio through an 8 kHz μ-law line first")
    spoken.set_defaults(func=cmd_eval_spoken)

    call = sub.add_parser("call", help="send a recording through the running voice gateway")
    call.add_argument("file")
    call.add_argument("--out", default="reply.wav", help="where to write the reply audio")
    call.add_argument("--session", help="conversation id (default: a new one)")
    call.set_defaults(func=cmd_call)

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

    inbox = sub.add_parser("inbox", help="messages the bot was unsure about (from the tracker store)")
    inbox.add_argument("--json", action="store_true")
    inbox.set_defaults(func=cmd_inbox, action="list")
    inbox_sub = inbox.add_subparsers(dest="action")
    label = inbox_sub.add_parser("label", help="move an inbox item into the training data")
    label.add_argument("id")
    label.add_argument("intent")

    purge = sub.add_parser("purge", help="delete conversations from the tracker store after a retention period")
    purge.add_argument("--older-than", required=True, metavar="AGE",
                       help="conversations whose last event is older than this: 30d, 12h, 90m, 2w")
    purge.add_argument("--dry-run", action="store_true", help="only count what would be removed")
    purge.set_defaults(func=cmd_purge)

    voices = sub.add_parser("voices", help="Piper voices")
    voices_sub = voices.add_subparsers(dest="what", required=True)
    download = voices_sub.add_parser("download", help="download a voice with Piper's downloader")
    download.add_argument("name", nargs="?", default=Settings.__fields__["tts_voice"].default)
    download.set_defaults(func=cmd_voices_download)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
