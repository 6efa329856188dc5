"""The dataset rules: their stable ids, severities and summaries, and the text helpers they share.

`RULE_TABLE` is the authoritative list. Each rule is an *error* (the training job would fail or
train on garbage: the pipeline stops) or a *warning* (legal but suspicious: reported, the run goes
on); `strict` validation treats every warning as an error. The reasons for each severity, and how
AWS's own sample validator behaves on the same input, are in docs/dataset-rules.md (a test keeps
that table and this one in step). Rule ids are stable: tools and runbooks key on them.

Messages quote field names, roles, formats, tool names and ids, and reserved strings, never
sample text, and never a Python repr.
"""

from __future__ import annotations

import json
import re

ERROR = "error"
WARNING = "warning"

SCHEMA_VERSION = "bedrock-conversation-2024"

# Sample counts accepted by a SageMaker training job (Bedrock's own jobs need 200 or more).
MIN_SAMPLES = 8
MAX_SAMPLES = 20_000

# No valid sample comes near this (the context is at most 32k tokens and media are referenced by
# URI); the cap bounds the memory one malformed line can take.
MAX_LINE_BYTES = 8 * 1024 * 1024

# Matched anywhere in any text, in any case. AWS documents the first seven; AWS's sample
# validator means to reject "Thought:" as well (its list runs it into neighbours through missing
# commas), and the stricter public validators add "<unk>".
RESERVED_STRINGS: tuple[str, ...] = (
    "user:",
    "bot:",
    "assistant:",
    "system:",
    "<image>",
    "<video>",
    "[eos]",
    "thought:",
    "<unk>",
)

# What to write instead of each reserved string (the fix names the alternatives of what was found).
RESERVED_ALTERNATIVES: dict[str, str] = {
    "user:": "'User -' or 'Customer -'",
    "bot:": "'Bot -' or 'Agent -'",
    "assistant:": "'Assistant -' or 'Agent -'",
    "system:": "'System -' or 'Instructions -'",
    "<image>": "'[image]' (or an image block)",
    "<video>": "'[video]' (or a video block)",
    "[eos]": "nothing: delete it (the job adds the end-of-sequence token itself)",
    "thought:": "'Thinking -' (or move the reasoning into a reasoningContent block)",
    "<unk>": "nothing: delete it, or write the word it stands for",
}

# (id, severity, what breaks it). Add new ids; never rename old ones.
RULE_TABLE: tuple[tuple[str, str, str], ...] = (
    ("line.blank", WARNING, "an empty or whitespace-only line"),
    ("line.too_long", ERROR, f"a line longer than {MAX_LINE_BYTES} bytes"),
    ("json.invalid", ERROR, "a line that is not one valid UTF-8 JSON value"),
    ("json.not_object", ERROR, "a line that is valid JSON but not an object"),
    ("field.missing", ERROR, "a required field is absent"),
    ("field.null", ERROR, "a field is null where the format needs a value"),
    ("field.type", ERROR, "a field has the wrong JSON type"),
    ("field.unknown", WARNING, "a field that the format does not define"),
    ("field.value", ERROR, "a field holds a value outside its allowed set"),
    ("schema.version", WARNING, f"schemaVersion is absent or not {SCHEMA_VERSION!r}"),
    ("list.empty", ERROR, "an empty list where at least one item is needed"),
    ("roles.invalid", ERROR, "a role other than 'user' or 'assistant'"),
    (
        "roles.order",
        ERROR,
        "roles do not alternate user, assistant, ... starting with user, ending with assistant",
    ),
    ("content.block", ERROR, "a content block that is not exactly one known kind"),
    ("content.role", ERROR, "a content block kind that this role may not use"),
    ("content.reasoning_only", ERROR, "a message whose only content is reasoning"),
    ("text.empty", ERROR, "an empty or whitespace-only text"),
    ("text.reserved", ERROR, "a text holds a reserved string"),
    ("media.format", ERROR, "a media format Nova 2 Lite does not accept"),
    ("media.source", ERROR, "media not given as source.s3Location {uri, bucketOwner?}"),
    ("media.uri", ERROR, "a media URI that is not s3://bucket/key with safe characters"),
    ("media.bucket", ERROR, "media in a different bucket from the dataset"),
    ("media.count", ERROR, "more media of one kind in a sample than allowed"),
    ("media.mixed", ERROR, "more than one media kind in the dataset"),
    ("reasoning.media", ERROR, "reasoning in a sample with media"),
    ("reasoning.enabled", ERROR, "reasoning present or absent against ReasoningEnabled"),
    ("tools.spec", ERROR, "an invalid tool declaration"),
    ("tools.duplicate_name", ERROR, "a tool name declared twice"),
    ("tools.undeclared", ERROR, "a toolUse names a tool the sample does not declare"),
    ("tools.id", ERROR, "an invalid toolUseId"),
    ("tools.duplicate_id", ERROR, "a toolUseId used twice in a sample"),
    ("tools.result_unmatched", ERROR, "a toolResult that answers no toolUse of the previous turn"),
    ("tools.duplicate_result", ERROR, "a toolUse answered more than once"),
    ("tools.unanswered", ERROR, "a toolUse not answered in the next user turn"),
    (
        "parts.consistency",
        WARNING,
        "an optional part (system, reasoning, tools, media) in some samples only",
    ),
    ("samples.min", ERROR, f"fewer than {MIN_SAMPLES} samples"),
    ("samples.max", ERROR, f"more than {MAX_SAMPLES} samples"),
    ("samples.batch_size", ERROR, "fewer samples than the global batch size"),
    ("file.name", ERROR, "a dataset file whose name the training job does not accept"),
    (
        "context.length",
        WARNING,
        "an evaluation sample whose system and query likely exceed the documented context",
    ),
)

RULES: dict[str, str] = {rule: summary for rule, _, summary in RULE_TABLE}
SEVERITY: dict[str, str] = {rule: severity for rule, severity, _ in RULE_TABLE}

_QUOTE_CHARS = 40


def quote(value: object) -> str:
    """A short rendering of a key, role, format, name or id for a message (never sample text).

    Strings are single-quoted; anything else is written as JSON (null, true, 7) or named by its
    type ("an array", "an object"), never as a Python repr.
    """
    if isinstance(value, str):
        text = "'" + json.dumps(value, ensure_ascii=False)[1:-1].replace("'", "\\'") + "'"
    elif value is None or isinstance(value, (bool, int, float)):
        text = json.dumps(value)
    else:
        return a_json(value)
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 4] + "...'"


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def article(word: str) -> str:
    """`word` with its indefinite article: "an array", "a string", "a user turn"."""
    # By sound: "a user", but "an unknown"; the words used here hold no other exceptions.
    return ("an " if word.startswith(("a", "e", "i", "o", "un")) else "a ") + word


def a_json(value: object) -> str:
    """What a value is, for a message: "an array", "a string", "null"."""
    name = json_type(value)
    return name if name == "null" else article(name)


# Every colon word ends in ':' and the other reserved strings start with '<' or '['. A search
# anchored on ':' (a literal, so the regex engine skips to each colon at memchr speed) with
# look-behinds for the words runs entirely in C, about twice as fast as a Python loop over the
# colons. The classes spell out ASCII case, which equals `token in text.lower()` for these
# tokens (no non-ASCII character lowers to one of their letters); property tests check it.
def _any_case(word: str) -> str:
    return "".join(
        f"[{char.lower()}{char.upper()}]" if char.isalpha() else re.escape(char) for char in word
    )


_COLON_WORDS = tuple(token for token in RESERVED_STRINGS if token.endswith(":"))
_BRACKETED = tuple(token for token in RESERVED_STRINGS if not token.endswith(":"))
COLON_SEARCH = re.compile(
    ":(?:" + "|".join(f"(?<={_any_case(token)})" for token in _COLON_WORDS) + ")"
).search
BRACKET_SEARCH = re.compile("|".join(_any_case(token) for token in _BRACKETED)).search


def reserved_in(text: str) -> list[str]:
    """The reserved strings in `text`, matched in any case, in `RESERVED_STRINGS` order."""
    if COLON_SEARCH(text) is None and (
        ("<" not in text and "[" not in text) or BRACKET_SEARCH(text) is None
    ):
        return []
    lowered = text.lower()
    return [token for token in RESERVED_STRINGS if token in lowered]


def text_is_clean(text: object) -> bool:
    """True for a text that breaks no rule: the common case, decided without building a finding."""
    return (
        type(text) is str
        and bool(text)
        and not text.isspace()
        and COLON_SEARCH(text) is None
        and (("<" not in text and "[" not in text) or BRACKET_SEARCH(text) is None)
    )


def reserved_message(found: list[str]) -> str:
    """The text.reserved message: what was found and, for each, what to write instead."""
    listed = ", ".join(quote(token) for token in found)
    fixes = "; ".join(f"for {quote(token)} write {RESERVED_ALTERNATIVES[token]}" for token in found)
    return (
        f"the text contains the reserved string(s) {listed} (matched in any case), which fail "
        f"the training job: {fixes}"
    )


def text_problem(text: object) -> tuple[str, str] | None:
    """(rule, message) for a text that breaks a rule, or None."""
    if type(text) is not str:
        if text is None:
            return "field.null", "the text is null: write the text, or drop the block"
        return "field.type", f"expected a JSON string, found {a_json(text)}"
    if not text or text.isspace():
        return "text.empty", "the text is empty: write the text or drop the block"
    found = reserved_in(text)
    if found:
        return "text.reserved", reserved_message(found)
    return None
