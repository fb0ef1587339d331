"""`hotline call` against the running gateway, and `hotline eval speech|spoken` on real recordings."""
from __future__ import annotations

import json
import subprocess
import sys
import wave

from hotline.trainer.training import rasa_env
from tests.conftest import ROOT

AUDIO = ROOT / "tests" / "data" / "audio"


def hotline(*args: str, env_extra=None) -> subprocess.CompletedProcess:
    env = dict(rasa_env(), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "hotline.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_call_sends_a_recording_through_the_gateway(stack, tmp_path):
    out = tmp_path / "reply.wav"
    result = hotline("call", str(AUDIO / "fireredasr2s_hello_zh.wav"), "--out", str(out),
                     env_extra={"GATEWAY_PORT": str(stack.settings.gateway_port)})
    assert result.returncode == 0, result.stderr
    assert "intent:     greet" in result.stdout and "transcript: 你好" in result.stdout
    with wave.open(str(out)) as wav:
        assert wav.getnframes() > 0


def test_call_reports_a_missing_gateway(tmp_path):
    result = hotline("call", str(AUDIO / "fireredasr2s_hello_zh.wav"), env_extra={"GATEWAY_PORT": "1"})
    assert result.returncode == 1 and "cannot reach the voice gateway" in result.stderr


def test_eval_speech_on_the_shared_recordings():
    report = json.loads(hotline("eval", "speech", str(AUDIO / "manifest.tsv"), "--json").stdout)
    assert report["n"] == 3 and report["cer"] <= 0.25
    assert {p["file"] for p in report["predictions"]} == {l.split("\t")[0] for l in
                                                         (AUDIO / "manifest.tsv").read_text().splitlines()[1:]}
    assert all({"reference", "hypothesis", "cer"} <= set(p) for p in report["predictions"])
    hello = next(p for p in report["predictions"] if p["file"] == "fireredasr2s_hello_zh.wav")
    assert hello["reference"] == "你好世界" and hello["hypothesis"].startswith("你好")  # not overwritten


def test_eval_speech_through_a_phone_line_is_scored_separately():
    report = json.loads(hotline("eval", "speech", str(AUDIO / "manifest.tsv"), "--json", "--band", "phone").stdout)
    assert report["band"] == "phone" and report["n"] == 3 and 0 < report["cer"] <= 0.6


def test_eval_spoken_scores_intents_from_recordings(tmp_path, trained_settings):
    manifest = tmp_path / "spoken.tsv"
    manifest.write_text("file\ttext\tintent\n"
                        f"{AUDIO / 'fireredasr2s_hello_zh.wav'}\t你好世界\tgreet\n"
                        f"{AUDIO / 'firered_aishell1_BAC009S0764W0121.wav'}\t甚至出现交易几乎停滞的情况\tout_of_scope\n",
                        encoding="utf-8")
    result = hotline("eval", "spoken", str(manifest), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"cer", "accuracy", "macro_f1", "n", "predictions"} and report["n"] == 2
    hello = report["predictions"][0]
    assert hello["predicted"] == "greet" and hello["intent"] == "greet" and hello["reference"] == "你好世界"
    assert {"intent", "predicted", "confidence", "hypothesis"} <= set(hello)


def test_eval_spoken_survives_an_empty_transcript(tmp_path, trained_settings):
    """Silence gives an empty transcript: scored as out_of_scope (not understood), no crash."""
    silence = tmp_path / "silence.wav"
    with wave.open(str(silence), "wb") as wav:
        wav.setnchannels(1), wav.setsampwidth(2), wav.setframerate(16000)
        wav.writeframes(b"\0\0" * 16000)
    manifest = tmp_path / "spoken.tsv"
    manifest.write_text(f"file\ttext\tintent\n{silence}\t查一下订单\torder_status\n"
                        f"{AUDIO / 'fireredasr2s_hello_zh.wav'}\t你好世界\tgreet\n", encoding="utf-8")
    result = hotline("eval", "spoken", str(manifest), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    empty = report["predictions"][0]
    assert empty["hypothesis"] == "" and empty["predicted"] == "out_of_scope" and empty["cer"] == 1.0
    assert report["accuracy"] == 0.5


def test_eval_speech_rejects_a_manifest_without_the_header(tmp_path):
    manifest = tmp_path / "bad.tsv"
    manifest.write_text("a.wav\t你好\n", encoding="utf-8")
    result = hotline("eval", "speech", str(manifest))
    assert result.returncode == 2 and "header" in result.stderr


def test_chat_in_the_terminal_holds_a_warranty_and_an_order_conversation(stack):
    script = "帮我查一下保修\nC39XK1ABHG7F\n查一下我的订单\nW1000000002\n5678\n/quit\n"
    env = dict(rasa_env(), RASA_PORT=str(stack.settings.rasa_port))
    result = subprocess.run([sys.executable, "-m", "hotline.cli", "chat", "--sender", "terminal-test"], cwd=ROOT,
                            env=env, input=script, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    replies = [line for line in result.stdout.splitlines() if line.startswith("助手：")]
    assert any("有限保修期内" in r for r in replies)
    assert any("已发货" in r and "顺丰速运" in r for r in replies)


def test_say_writes_what_a_caller_hears_and_shows_how_it_was_read(tmp_path):
    from voice_gateway.audio import decode
    from voice_gateway.stt import WhisperSTT, ensure_whisper_model
    from hotline.core.settings import Settings

    out = tmp_path / "say.wav"
    result = hotline("say", "您好，这里是苹果产品支持智能助手。订单W1000000002已发货。", "--out", str(out), "--phone")
    assert result.returncode == 0, result.stderr
    assert "read as:  您好，这里是苹果产品支持智能助手。订单达布溜幺零零零零零零零零二已发货。" in result.stdout
    assert "kokoro jm_kumo" in result.stdout and "Apache-2.0" in result.stdout
    with wave.open(str(out)) as wav:
        assert wav.getframerate() == 8000 and wav.getnframes() > 8000 * 3
    heard = WhisperSTT(ensure_whisper_model(Settings().whisper_dir)).transcribe(decode(out.read_bytes()).samples).text
    assert sum(word in heard for word in ("您好", "苹果", "产品", "智能", "助手", "发货")) >= 3, heard


def test_say_refuses_nothing_to_say_and_names_an_unknown_voice(tmp_path):
    empty = hotline("say", " ", "--out", str(tmp_path / "x.wav"))
    assert empty.returncode == 2 and "nothing to say" in empty.stderr
    unknown = hotline("say", "你好", "--voice", "zh_nobody", "--out", str(tmp_path / "x.wav"))
    assert unknown.returncode == 1 and "jm_kumo" in unknown.stderr and not (tmp_path / "x.wav").exists()


def test_voices_list_stars_the_configured_voice():
    listed = hotline("voices", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any(line.startswith("* kokoro  jm_kumo") for line in lines)
    assert sum(line.startswith("  kokoro") for line in lines) == 4  # the other Kokoro voices
    other = hotline("voices", "list", env_extra={"TTS_VOICE": "jf_tebukuro"})
    assert any(line.startswith("* kokoro  jf_tebukuro") for line in other.stdout.splitlines())
