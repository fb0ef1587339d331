"""Trainers' tools on a temporary copy of the data: add, import, check, reports, the inbox from a
real SQLite tracker store, and the augmentation."""
from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.trainer.augment import augment, noisy, write_augmented
from hotline.trainer.nlu_data import NluData
from hotline.trainer.reports import compare, load_report, save_report
from hotline.trainer.training import rasa_env
from tests.conftest import ROOT


@pytest.fixture
def project(tmp_path) -> Path:
    for folder in ("bot", "data"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def hotline(project: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    env = dict(rasa_env(), PROJECT_ROOT=str(project), VAR_DIR=str(project / "var"), MODELS_DIR=str(project / "models"))
    result = subprocess.run([sys.executable, "-m", "hotline.cli", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_nlu_add_appends_normalised_examples_and_keeps_the_file_hand_editable(project):
    path = project / "data" / "nlu" / "chitchat.yml"
    before = path.read_text(encoding="utf-8")
    result = hotline(project, "nlu", "add", "greet", "  喂，您好呀  ", "Ｈｅｌｌｏ　客服", "您好", "手机进水了", check=True)
    after = path.read_text(encoding="utf-8")
    assert "added    greet: 喂，您好呀" in result.stdout and "added    greet: Hello 客服" in result.stdout
    assert "exists   greet: 您好" in result.stdout
    assert "already an example of 'water_damage'" in result.stderr
    assert after.splitlines()[:3] == before.splitlines()[:3]  # the header comments are kept
    assert "    - Hello 客服\n" in after and after.count("手机进水了") == 0
    # only lines were added: nothing else in the file moved
    assert [line for line in after.splitlines() if line not in before.splitlines()] == ["    - 喂，您好呀", "    - Hello 客服"]


def test_nlu_add_refuses_unknown_intents_with_suggestions(project):
    result = hotline(project, "nlu", "add", "warrenty", "查保修")
    assert result.returncode == 2 and "did you mean warranty" in result.stderr


def test_nlu_import_tsv_and_csv(project, tmp_path):
    tsv = tmp_path / "new.tsv"
    tsv.write_text("text\tintent\n我的平板激活失败了\tactivation\n帮我查下保修状态吧\twarranty\n", encoding="utf-8")
    assert "2 added" in hotline(project, "nlu", "import", str(tsv), check=True).stdout
    csv_file = tmp_path / "new.csv"
    csv_file.write_text("intent,text\nthanks,多谢你啦\nthanks,我的平板激活失败了\n", encoding="utf-8")
    result = hotline(project, "nlu", "import", str(csv_file))
    assert "1 added" in result.stdout and "already an example of 'activation'" in result.stderr
    data = NluData(project / "data" / "nlu", project / "bot" / "domain.yml").examples()
    assert "多谢你啦" in data["thanks"] and "我的平板激活失败了" in data["activation"]


def test_nlu_check_is_clean_on_the_shipped_data():
    result = subprocess.run([sys.executable, "-m", "hotline.cli", "nlu", "check", "--json"], cwd=ROOT, env=rasa_env(),
                            capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout)
    assert report["ok"] and result.returncode == 0, report


def test_nlu_check_finds_problems(project):
    path = project / "data" / "nlu" / "chitchat.yml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("    - 谢谢你\n", "    - 谢谢你\n    - 您好\n    - 订单[W123](order_number)\n    - [iPhone](order_number)坏了\n", 1)
    text = text.replace("- intent: deny\n  examples: |\n", "- intent: deny\n  examples: |\n    - 感谢你的帮助啊\n", 1)
    path.write_text(text, encoding="utf-8")
    report = json.loads(hotline(project, "nlu", "check", "--json", "--skip-rasa", "--min-examples", "60").stdout)
    assert {"text": "您好", "intents": ["greet", "thanks"]} in report["shared"]
    assert any(d["a"][1] == "感谢你的帮助" or d["b"][1] == "感谢你的帮助啊" for d in report["near_duplicates"])
    assert any(item["intent"] == "payment_change" for item in report["too_few"])
    assert any(item["value"] == "W123" for item in report["regex_mismatch"])
    assert any(item["value"] == "iPhone" for item in report["inconsistent_entities"])
    assert not report["ok"]


def seed_tracker_store(path: Path) -> None:
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))

    def conversation(sender, turns):
        tracker = DialogueStateTracker(sender, [])
        for text, intent, confidence, action in turns:
            ranking = [{"name": intent, "confidence": confidence}, {"name": "warranty", "confidence": 0.2}]
            tracker.update(UserUttered(text, {"name": intent, "confidence": confidence},
                                       parse_data={"intent": {"name": intent, "confidence": confidence},
                                                   "intent_ranking": ranking, "entities": [], "text": text}))
            tracker.update(ActionExecuted(action))
            tracker.update(ActionExecuted("action_listen"))
        asyncio.run(store.save(tracker))

    conversation("caller-a", [("我手机号13812345678保休查一下", "nlu_fallback", 0.25, "action_rephrase_or_handoff"),
                              ("手机激活不了", "activation", 0.95, "utter_activation_steps")])
    conversation("caller-b", [("我手机号13912345678保休查一下！", "nlu_fallback", 0.22, "action_rephrase_or_handoff"),
                              ("那个东西弄不好", "crash", 0.28, "utter_crash_steps"),
                              ("转人工", "human_handoff", 0.97, "action_human_handoff")])


def test_inbox_groups_unsure_messages_and_label_moves_them_into_training_data(project):
    db = project / "var" / "tracker.db"
    db.parent.mkdir(parents=True)
    seed_tracker_store(db)
    items = json.loads(hotline(project, "inbox", "--json", check=True).stdout)
    texts = {item["text"]: item for item in items}
    assert len(items) == 2  # the two 保休 messages are one item; confident turns and asked-for handoffs are not in
    grouped = next(item for item in items if item["count"] == 2)
    assert "13812345678" not in grouped["text"] and "138****5678" in grouped["text"]
    assert grouped["conversations"] == 2 and grouped["reasons"]["fallback"] == 2
    assert texts["那个东西弄不好"]["reasons"] == {"low_confidence": 1}

    result = hotline(project, "inbox", "label", grouped["id"], "warranty", check=True)
    assert "added    warranty: 我手机号138****5678保休查一下" in result.stdout
    warranty = NluData(project / "data" / "nlu", project / "bot" / "domain.yml").examples()["warranty"]
    assert "我手机号138****5678保休查一下" in warranty
    remaining = json.loads(hotline(project, "inbox", "--json", check=True).stdout)
    assert [item["text"] for item in remaining] == ["那个东西弄不好"]
    assert hotline(project, "inbox", "label", "deadbeef", "warranty").returncode == 2


def test_augmentation_is_deterministic_and_keeps_annotations():
    data = NluData(ROOT / "data" / "nlu", ROOT / "bot" / "domain.yml")
    first, again, other = augment(data, seed=13), augment(data, seed=13), augment(data, seed=14)
    assert first == again and first != other
    assert sum(len(v) for v in first.values()) > 1000
    variants = [noisy("帮我查订单[W1234567890](order_number)的保修", random.Random(seed)) for seed in range(20)]
    assert all("[W1234567890](order_number)" in v for v in variants)
    assert len(set(variants)) > 5


def test_augmented_file_stays_out_of_the_hand_written_data(tmp_path):
    data = NluData(ROOT / "data" / "nlu", ROOT / "bot" / "domain.yml")
    path = write_augmented(data, tmp_path / "augmented.yml", seed=13)
    assert path.read_text(encoding="utf-8").splitlines()[1].startswith("# generated")
    assert not list((ROOT / "data" / "nlu").glob("*augment*"))


def test_report_folder_and_comparison(tmp_path):
    predictions = [{"text": "a", "intent": "greet", "predicted": "greet"}, {"text": "b", "intent": "thanks", "predicted": "greet"}]
    from hotline.trainer.evaluation import score

    old = {**score(["greet", "thanks"], ["greet", "greet"]), "predictions": predictions}
    new = {**score(["greet", "thanks"], ["greet", "thanks"]), "predictions": predictions[:1]}
    save_report(old, tmp_path / "old")
    save_report(new, tmp_path / "new", compare_with=load_report(tmp_path / "old"))
    assert (tmp_path / "new" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    summary = (tmp_path / "new" / "summary.md").read_text(encoding="utf-8")
    assert "Compared with the previous report" in summary and "| thanks | 0.000 | 1.000 | +1.000 |" in summary
    assert compare(new, old)["accuracy_delta"] == 0.5


# --- what the assistant says: never asks for secrets ---------------------------------------------

SECRET_WORDS = ("密码", "验证码", "银行卡")
NEGATIONS = ("不会", "不要", "请勿", "绝不", "不能", "只能")


def domain_messages(domain_yaml: str):
    """Every text the domain can send, whole: each variation (channel and conditional ones too), and
    the titles of its buttons, whatever the YAML layout (block scalars, folded lines)."""
    import yaml

    domain = yaml.safe_load(domain_yaml)
    for name, variations in (domain.get("responses") or {}).items():
        assert isinstance(variations, list) and variations, name
        for variation in variations:
            assert isinstance(variation, dict) and ("text" in variation or "custom" in variation), (name, variation)
            if "text" in variation:
                assert isinstance(variation["text"], str), (name, variation)
                yield f"{name} [{variation.get('channel', 'any channel')}]", variation["text"]
            for button in variation.get("buttons") or []:
                yield f"{name} button", str(button.get("title", ""))


def action_messages(source: str, filename: str = "<actions>"):
    """Every string the action code could send, whole: each string expression that is assigned,
    returned or passed as an argument (not docstrings, not dict entries such as topic labels), with
    implicit concatenation across lines joined by the parser and f-string fields shown as {}."""
    import ast

    def text_of(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = text_of(node.left), text_of(node.right)
            return None if left is None and right is None else (left or "{}") + (right or "{}")
        return None

    tree = ast.parse(source, filename)
    candidates = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.Return)) and node.value is not None:
            candidates.append(node.value)
        elif isinstance(node, ast.Call):
            candidates += list(node.args) + [k.value for k in node.keywords]
    for node in candidates:
        branches = [node.body, node.orelse] if isinstance(node, ast.IfExp) else [node]
        for branch in branches:
            text = text_of(branch)
            if text:
                yield f"{filename}:{branch.lineno}", text


def asks_for_secrets(messages):
    return [(where, text) for where, text in messages
            if any(word in text for word in SECRET_WORDS) and not any(neg in text for neg in NEGATIONS)]


def test_no_response_or_action_message_asks_for_secrets():
    """The source is explicit: never ask for passwords, verification codes or bank details. Any
    message that mentions them must, as a whole, be telling the caller NOT to share them."""
    messages = list(domain_messages((ROOT / "bot" / "domain.yml").read_text(encoding="utf-8")))
    assert len(messages) > 50
    for path in sorted((ROOT / "actions").rglob("*.py")):
        messages += list(action_messages(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))))
    assert any("密码" in text for _, text in messages)  # the scan does see the warnings
    assert asks_for_secrets(messages) == []


def test_the_secrets_scan_reads_multi_line_messages_whole():
    """A message split over lines, a block scalar, a channel variation and a button are each one
    message: the request on the second line is caught, and so is a warning on the second line."""
    source = '''
def run(dispatcher, phone):
    text = ("为了核实身份，"
            "请告诉我您的Apple ID密码。")
    dispatcher.utter_message(text=text)
    dispatcher.utter_message(text=f"您好{phone}，"
                                  "请报一下短信验证码。")
    return "好的，" + "请提供银行卡号。"
    ok = ("转接中。"
          "顾问不会向您索取密码。")
'''
    caught = asks_for_secrets(action_messages(source))
    assert sorted(text for _, text in caught) == sorted(["为了核实身份，请告诉我您的Apple ID密码。",
                                                         "您好{}，请报一下短信验证码。", "好的，请提供银行卡号。"])
    domain = '''
responses:
  utter_ok:
  - text: |
      请注意：
      顾问不会向您索取密码。
  utter_bad_block:
  - text: |
      为了核实，
      请说出您的密码。
  utter_bad_channel:
  - text: 好的。
  - text: 好的，请说一下验证码。
    channel: phone
  utter_bad_button:
  - text: 请选择
    buttons:
    - title: 提供银行卡号
      payload: /card
'''
    assert sorted(where for where, _ in asks_for_secrets(domain_messages(domain))) == [
        "utter_bad_block [any channel]", "utter_bad_button button", "utter_bad_channel [phone]"]
