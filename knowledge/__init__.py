"""The FAQ knowledge base: load and validate the YAML files, keep them fresh, match texts to entries."""

from knowledge.config import KnowledgeConfig
from knowledge.language import detect_language
from knowledge.loader import KnowledgeError, Problem, load_knowledge
from knowledge.matcher import Match, Matcher
from knowledge.model import FaqEntry, KnowledgeBase, SourceRef
from knowledge.reloader import KnowledgeHolder

__all__ = [
    "FaqEntry",
    "KnowledgeBase",
    "KnowledgeConfig",
    "KnowledgeError",
    "KnowledgeHolder",
    "Match",
    "Matcher",
    "Problem",
    "SourceRef",
    "detect_language",
    "load_knowledge",
]
