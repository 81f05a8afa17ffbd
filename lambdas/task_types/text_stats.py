"""``text.stats``: line, word and character counts and the most frequent terms."""

from __future__ import annotations

import heapq
import re
from collections import Counter
from typing import Any, ClassVar

from pydantic import Field

from task_types.base import TaskContext, TaskType
from task_types.sources import InlineOrSourceParams, InlineText

PROGRESS_STEP = 10
# Letters and digits, with inner apostrophes (straight or typographic): "don't" is one word.
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
# fmt: off
STOPWORDS = frozenset({
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by",
    "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he", "her", "him", "his",
    "how", "i", "if", "in", "into", "is", "it", "its", "just", "me", "more", "my", "no", "not", "of", "on",
    "or", "our", "out", "she", "so", "some", "such", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "those", "to", "too", "up", "us", "was", "we", "were", "what", "when",
    "where", "which", "who", "will", "with", "would", "you", "your"
})
# fmt: on


class TextStatsParams(InlineOrSourceParams):
    inline_field: ClassVar[str] = "text"

    text: InlineText | None = None
    top: int = Field(default=10, ge=1, le=100)


def run(params: TextStatsParams, ctx: TaskContext) -> dict[str, Any]:
    text = params.load_text(ctx.blobs)
    lines = text.splitlines()
    terms: Counter[str] = Counter()
    next_report = PROGRESS_STEP
    for number, line in enumerate(lines, start=1):
        terms.update(_WORD.findall(line.lower()))
        percent = number * 100 // len(lines)
        if percent >= next_report:
            ctx.report_progress(percent)
            next_report = percent - percent % PROGRESS_STEP + PROGRESS_STEP
    top_terms = heapq.nsmallest(
        params.top,
        ((term, count) for term, count in terms.items() if term not in STOPWORDS),
        key=lambda item: (-item[1], item[0]),
    )
    return {
        "lines": len(lines),
        "words": terms.total(),
        "characters": len(text),
        "uniqueWords": len(terms),
        "topTerms": [{"term": term, "count": count} for term, count in top_terms],
    }


# Counting words of an object up to Lambda's memory takes seconds: 30 s a try is generous.
TASK_TYPE = TaskType(name="text.stats", params_model=TextStatsParams, run=run, max_duration_seconds=30)
