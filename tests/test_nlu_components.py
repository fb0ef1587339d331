"""The text views and the recognition error model the NLU components are built on (no Rasa)."""
from __future__ import annotations

import random

import pytest

from hotline.trainer.errors import ErrorModel, align
from hotline.nlu.features import pinyin_ngrams
from hotline.core.text import fuzzy_pinyin, has_content
from voice_gateway.stt import character_error_rate, normalize_for_cer


@pytest.mark.parametrize("heard", ["击火不了", "机活不了", "激火不了"])
def test_recognition_homophones_share_every_phonetic_feature(heard):
    assert pinyin_ngrams(heard) == pinyin_ngrams("激活不了")


@pytest.mark.parametrize("a, b", [("四十", "事实"), ("上海", "伤害"), ("认证", "人正"), ("流量", "牛娘")])
def test_fuzzy_syllables_merge_the_pairs_whisper_confuses(a, b):
    # zh/z ch/c sh/s n/l an/ang en/eng in/ing
    assert fuzzy_pinyin(a) == fuzzy_pinyin(b)


def test_latin_words_and_digits_stay_words():
    assert fuzzy_pinyin("iPhone 15 激活") == ["iphone", "15", "ji", "huo"]
    assert fuzzy_pinyin("Ａｐｐｌｅ　ID") == ["apple", "id"]  # full-width


@pytest.mark.parametrize("text", ["", "。", "...", "？？", "\u200b", "\ufeff", "😀😀", " \t "])
def test_punctuation_emoji_and_invisible_text_have_no_content(text):
    assert not has_content(text)
    assert normalize_for_cer(text) == ""


@pytest.mark.parametrize("text", ["a", "7", "是", "asdf"])
def test_letters_and_digits_are_content(text):
    assert has_content(text)


def test_cer_ignores_annotation_tags_and_counts_an_empty_hypothesis_as_all_wrong():
    assert character_error_rate("你好<music>世界", "你好世界") == 0
    assert character_error_rate("[noise]你好", "你好") == 0
    assert character_error_rate("你好", "。") == 1.0


def test_alignment_marks_substitutions_deletions_and_insertions():
    assert align("激活不了", "击火不") == [("激", "击"), ("活", "火"), ("不", "不"), ("了", "")]
    assert align("好", "好的") == [("好", "好"), ("", "的")]


def test_error_model_learns_rates_and_kinds_from_transcripts():
    model = ErrorModel.learn([("激活不了", "击火不了"), ("查订单。", "查订单"), ("上", "桑"), ("你好", "我好的")])
    assert model.characters == 10
    assert model.substitution == pytest.approx(4 / 10)
    assert model.deletion == 0 and model.insertion == pytest.approx(1 / 10)
    assert model.kinds["same_sound"] == pytest.approx(2 / 4)  # 激→击, 活→火
    assert model.kinds["near_sound"] == pytest.approx(1 / 4)  # shang→sang
    assert model.kinds["other"] == pytest.approx(1 / 4)  # ni→wo
    assert model.observed["激"] == ["击"]


def test_error_model_changes_only_chinese_characters_and_is_reproducible(tmp_path):
    model = ErrorModel(substitution=0.5, deletion=0.1, insertion=0.05,
                       kinds={"same_sound": 0.6, "near_sound": 0.2, "other": 0.2})
    text = "订单W1000000002的物流到哪了"
    first = [model.apply(text, random.Random(seed)) for seed in range(20)]
    assert first == [model.apply(text, random.Random(seed)) for seed in range(20)]
    assert all("W1000000002" in variant for variant in first)
    assert sum(variant != text for variant in first) >= 15
    model.save(tmp_path / "m.json")
    assert ErrorModel.load(tmp_path / "m.json") == model


def test_no_errors_means_no_change():
    assert ErrorModel().apply("手机进水了", random.Random(1)) == "手机进水了"
