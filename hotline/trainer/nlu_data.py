"""Trainers' edits to data/nlu/: add and import examples, and the project's own data checks.

The YAML stays hand-editable: files are edited with ruamel's round-trip mode (comments and order
kept) and new examples go to the end of their intent's list."""
from __future__ import annotations

import csv
import difflib
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

ANNOTATION = re.compile(r"\[([^\]]+)\]\((\w+)\)|\[([^\]]+)\]\{\"entity\": \"(\w+)\"[^}]*\}")


def _half_width(ch: str) -> str:
    # Full-width letters, digits and the ideographic space become ASCII; Chinese punctuation stays.
    if ch == "\u3000" or "\uff10" <= ch <= "\uff19" or "\uff21" <= ch <= "\uff3a" or "\uff41" <= ch <= "\uff5a":
        return unicodedata.normalize("NFKC", ch)
    return ch


def normalize_example(text: str) -> str:
    """Full-width letters/digits → ASCII, one space between words, no line breaks, no list dash."""
    text = "".join(_half_width(ch) for ch in (text or ""))
    text = " ".join(text.split())
    return text[2:].strip() if text.startswith("- ") else text


def plain(text: str) -> str:
    """The example as a caller would say it: entity annotations removed."""
    return ANNOTATION.sub(lambda m: m.group(1) or m.group(3), text)


def annotations(text: str) -> List[Tuple[str, str]]:
    return [((m.group(1) or m.group(3)), (m.group(2) or m.group(4))) for m in ANNOTATION.finditer(text)]


@dataclass
class AddReport:
    added: List[Tuple[str, str]] = field(default_factory=list)  # (intent, text)
    duplicates: List[Tuple[str, str]] = field(default_factory=list)  # already in that intent
    conflicts: List[Tuple[str, str, str]] = field(default_factory=list)  # (text, wanted, owner)
    unknown: Dict[str, List[str]] = field(default_factory=dict)  # intent → suggestions
    empty: int = 0


class NluData:
    def __init__(self, nlu_dir: Path, domain_path: Path) -> None:
        self.nlu_dir, self.domain_path = nlu_dir, domain_path
        self.yaml = YAML()
        self.yaml.preserve_quotes = True
        self.yaml.width = 4096
        self.yaml.indent(mapping=2, sequence=2, offset=0)
        self.docs: Dict[Path, object] = {}
        for path in sorted(nlu_dir.glob("*.yml")):
            self.docs[path] = self.yaml.load(path.read_text(encoding="utf-8"))
        self.known_intents = list(YAML(typ="safe").load(domain_path.read_text(encoding="utf-8"))["intents"])

    # --- reading ---------------------------------------------------------------------------
    def intent_items(self):
        for path, doc in self.docs.items():
            for item in doc.get("nlu") or []:
                if "intent" in item:
                    yield path, item

    def examples(self) -> Dict[str, List[str]]:
        found: Dict[str, List[str]] = defaultdict(list)
        for _path, item in self.intent_items():
            found[item["intent"]] += [line[2:].strip() for line in str(item["examples"]).splitlines()
                                      if line.strip().startswith("- ")]
        return dict(found)

    def owner_of(self) -> Dict[str, str]:
        return {plain(text): intent for intent, texts in self.examples().items() for text in texts}

    def regexes(self) -> Dict[str, List[str]]:
        found: Dict[str, List[str]] = defaultdict(list)
        for doc in self.docs.values():
            for item in doc.get("nlu") or []:
                if "regex" in item:
                    found[item["regex"]] += [line[2:].strip() for line in str(item["examples"]).splitlines()
                                             if line.strip().startswith("- ")]
        return dict(found)

    # --- writing ---------------------------------------------------------------------------
    def add(self, intent: str, texts: Iterable[str]) -> AddReport:
        report = AddReport()
        if intent not in self.known_intents:
            report.unknown[intent] = difflib.get_close_matches(intent, self.known_intents, n=3, cutoff=0.4)
            return report
        owners = self.owner_of()
        target = self._item_for(intent)
        for raw in texts:
            text = normalize_example(raw)
            if not text:
                report.empty += 1
                continue
            owner = owners.get(plain(text))
            if owner == intent:
                report.duplicates.append((intent, text))
            elif owner is not None:
                report.conflicts.append((text, intent, owner))
            else:
                block = str(target["examples"])
                target["examples"] = LiteralScalarString(block.rstrip("\n") + f"\n- {text}\n")
                owners[plain(text)] = intent
                report.added.append((intent, text))
        return report

    def _item_for(self, intent: str):
        for _path, item in self.intent_items():
            if item["intent"] == intent:
                return item
        # A domain intent with no examples yet gets its own file.
        path = self.nlu_dir / f"{intent}.yml"
        doc = self.docs.setdefault(path, self.yaml.load('version: "3.1"\nnlu: []\n'))
        doc["nlu"].append({"intent": intent, "examples": LiteralScalarString("")})
        return doc["nlu"][-1]

    def save(self) -> List[Path]:
        written = []
        for path, doc in self.docs.items():
            from io import StringIO

            buffer = StringIO()
            self.yaml.dump(doc, buffer)
            text = buffer.getvalue()
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                written.append(path)
        return written

    # --- checks ------------------------------------------------------------------------------
    def check(self, min_examples: int = 20, similarity: float = 0.8) -> Dict[str, list]:
        examples = self.examples()
        findings: Dict[str, list] = {"shared": [], "near_duplicates": [], "too_few": [],
                                     "inconsistent_entities": [], "regex_mismatch": [], "unknown_intents": []}
        where: Dict[str, set] = defaultdict(set)
        for intent, texts in examples.items():
            if intent not in self.known_intents:
                findings["unknown_intents"].append(intent)
            if len(texts) < min_examples:
                findings["too_few"].append({"intent": intent, "examples": len(texts), "minimum": min_examples})
            for text in texts:
                where[plain(text)].add(intent)
        findings["shared"] = [{"text": t, "intents": sorted(i)} for t, i in where.items() if len(i) > 1]

        grams = {(intent, plain(t)): _bigrams(plain(t)) for intent, texts in examples.items() for t in texts}
        keys = list(grams)
        for i, (intent_a, text_a) in enumerate(keys):
            for intent_b, text_b in keys[i + 1:]:
                if intent_a == intent_b or text_a == text_b:
                    continue
                a, b = grams[(intent_a, text_a)], grams[(intent_b, text_b)]
                if a and b and len(a & b) / len(a | b) >= similarity:
                    findings["near_duplicates"].append({"a": [intent_a, text_a], "b": [intent_b, text_b]})

        entity_of: Dict[str, set] = defaultdict(set)
        for texts in examples.values():
            for text in texts:
                for value, entity in annotations(text):
                    entity_of[value].add(entity)
        findings["inconsistent_entities"] = [{"value": v, "entities": sorted(e)} for v, e in entity_of.items()
                                             if len(e) > 1]
        for entity, patterns in self.regexes().items():
            compiled = [re.compile(p) for p in patterns]
            for texts in examples.values():
                for text in texts:
                    for value, annotated in annotations(text):
                        if annotated == entity and not any(c.fullmatch(value) or c.search(value) for c in compiled):
                            findings["regex_mismatch"].append({"entity": entity, "value": value, "example": text})
        return findings


def _bigrams(text: str) -> set:
    compact = re.sub(r"\s+", "", text.lower())
    return {compact[i:i + 2] for i in range(len(compact) - 1)} or ({compact} if compact else set())


def read_examples_file(path: Path) -> List[Tuple[str, str]]:
    """TSV or CSV with a header naming `text` and `intent`."""
    raw = path.read_text(encoding="utf-8-sig")
    dialect = "excel-tab" if path.suffix.lower() == ".tsv" or "\t" in raw.splitlines()[0] else "excel"
    rows = list(csv.DictReader(raw.splitlines(), dialect=dialect))
    if not rows or not {"text", "intent"} <= set(rows[0]):
        raise ValueError(f"{path}: the header must name the columns 'text' and 'intent'")
    return [(row["text"] or "", (row["intent"] or "").strip()) for row in rows]
