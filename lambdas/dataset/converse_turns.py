"""Messages, content blocks and reasoning of the bedrock-conversation-2024 format.

`TurnChecks` is mixed into `ConverseFormat` (lambdas/dataset/converse.py); it reports through
`self._add`, `self._keys` and `self._type` (lambdas/dataset/converse_parts.py).
`is_clean_text_sample` is the shortcut for the commonest sample, which reports nothing.
"""

from __future__ import annotations

from typing import Any

from lambdas.dataset.converse_parts import ABSENT, MEDIA_FORMATS, SampleState, ToolAndMediaChecks
from lambdas.dataset.rules import (
    BRACKET_SEARCH,
    COLON_SEARCH,
    SCHEMA_VERSION,
    article,
    quote,
    text_is_clean,
)

TOP_KEYS = frozenset({"schemaVersion", "system", "toolConfig", "messages"})
_MESSAGE_KEYS = frozenset({"role", "content"})
_REASONING_KEYS = frozenset({"reasoningText"})
_REASONING_TEXT_KEYS = frozenset({"text"})
# The role each non-text block kind belongs to.
_ROLE_OF_KIND = {
    "image": "user",
    "video": "user",
    "document": "user",
    "toolResult": "user",
    "reasoningContent": "assistant",
    "toolUse": "assistant",
}
_KINDS = ("text", "image", "video", "document", "reasoningContent", "toolUse", "toolResult")
_BLOCK_KINDS = "text, image, video, document, reasoningContent, toolUse or toolResult"


def is_clean_text_sample(obj: dict[str, Any]) -> bool:
    """True for a text-only sample (no tools, media or reasoning) that breaks no per-sample rule.

    Most samples are of this kind; deciding it in one pass, with no call per block and no JSON
    path built, is what keeps the validator near the speed of parsing. False means only "not
    sure": the full walk then decides and reports.
    """
    if (
        obj.get("schemaVersion") != SCHEMA_VERSION
        or "toolConfig" in obj
        or not obj.keys() <= TOP_KEYS
    ):
        return False
    blocks: list[Any] = []
    system = obj.get("system", blocks)  # absent: no blocks
    messages = obj.get("messages")
    if type(system) is not list or type(messages) is not list or not messages or len(messages) % 2:
        return False
    if system is not blocks:
        if not system:
            return False
        blocks.extend(system)
    expected = "user"
    for message in messages:
        if type(message) is not dict or len(message) != 2 or message.get("role") != expected:
            return False
        content = message.get("content")
        if type(content) is not list or not content:
            return False
        blocks.extend(content)
        expected = "assistant" if expected == "user" else "user"
    return _clean_text_blocks(blocks)


def _clean_text_blocks(blocks: list[Any]) -> bool:
    """True when every block is {"text": <a clean text>}."""
    colon_search, bracket_search = COLON_SEARCH, BRACKET_SEARCH
    for block in blocks:
        if type(block) is not dict or len(block) != 1:
            return False
        text = block.get("text")
        if not (
            type(text) is str
            and text
            and not text.isspace()
            and colon_search(text) is None
            and (("<" not in text and "[" not in text) or bracket_search(text) is None)
        ):
            return False
    return True


class TurnChecks(ToolAndMediaChecks):
    """The rules of messages, their content blocks, tool pairing and reasoning."""

    def _check_messages(self, messages: list[Any], sample: SampleState) -> None:
        # The hot loop of the validator: a turn of clean text blocks (nearly every turn) is
        # checked inline, with no call and no JSON path built; anything else goes to
        # `_check_content`, which checks that turn again from the start and reports.
        colon_search, bracket_search = COLON_SEARCH, BRACKET_SEARCH
        last_role: object = ABSENT
        for index, message in enumerate(messages):
            if type(message) is not dict:
                self._type(f"$.messages[{index}]", message, "object")
                sample.order_reported = True  # the order cannot be judged past a broken turn
                last_role = ABSENT
                continue
            if len(message) != 2 or "role" not in message or "content" not in message:
                self._keys(message, _MESSAGE_KEYS, ("role", "content"), f"$.messages[{index}]")
            last_role = role = message.get("role", ABSENT)
            if role != ("user" if index % 2 == 0 else "assistant"):
                self._check_role(role, index, sample)
            content = message.get("content", ABSENT)
            if type(content) is list and content and not sample.open_uses:
                for block in content:
                    if type(block) is dict and len(block) == 1:
                        text = block.get("text")
                        if (
                            type(text) is str
                            and text
                            and not text.isspace()
                            and colon_search(text) is None
                            and (
                                ("<" not in text and "[" not in text)
                                or bracket_search(text) is None
                            )
                        ):
                            continue
                    self._check_content(content, index, role, sample)
                    break
            elif content is not ABSENT:
                self._check_content(content, index, role, sample)
            if role == "user" and sample.open_uses:
                # The user turn after an assistant turn must answer all of its toolUse blocks.
                self._report_unanswered(sample.open_uses)
                sample.open_uses = {}
        if not sample.order_reported and last_role == "user":
            self._add(
                "roles.order",
                f"$.messages[{len(messages) - 1}].role",
                "the last turn is a user turn: a sample ends with the assistant turn it teaches; "
                "add one or drop the trailing user turn",
            )
        # toolUse blocks in the final assistant turn may stay unanswered: they teach the call.

    def _check_role(self, role: object, index: int, sample: SampleState) -> None:
        """A role that is not the one expected at `index`: why, as one finding."""
        path = f"$.messages[{index}].role"
        if role not in ("user", "assistant"):
            if role is ABSENT:
                pass  # field.missing already reported
            elif type(role) is not str:
                self._type(path, role, "string")
            else:
                hint = ': move system prompts to the top-level "system"' if role == "system" else ""
                self._add(
                    "roles.invalid", path, f"role {quote(role)} is not 'user' or 'assistant'{hint}"
                )
            sample.order_reported = True  # the order cannot be judged past an unknown role
            return
        if not sample.order_reported:
            sample.order_reported = True
            expected = "user" if index % 2 == 0 else "assistant"
            self._add(
                "roles.order",
                path,
                f"turn {index} is {article(str(role))} turn but {article(expected)} turn was "
                "expected: turns alternate user, assistant, ... starting with user",
            )

    def _check_content(
        self, content: object, index: int, role: object, sample: SampleState
    ) -> None:
        if type(content) is not list:
            self._type(f"$.messages[{index}].content", content, "array")
            return
        if not content:
            self._add(
                "list.empty",
                f"$.messages[{index}].content",
                "the turn has no content: add a text block or remove the turn",
            )
            return
        if role == "assistant" and sample.open_uses:
            # Two assistant turns in a row (roles.order): the first one's calls went unanswered.
            self._report_unanswered(sample.open_uses)
            sample.open_uses = {}
        reasoning_blocks = 0
        for position, block in enumerate(content):
            # Fast path for the commonest block: the JSON path is built only for a finding.
            if type(block) is dict and len(block) == 1 and "text" in block:
                if not text_is_clean(block["text"]):
                    path = f"$.messages[{index}].content[{position}].text"
                    self._check_text(block["text"], path)
            elif self._check_block(block, f"$.messages[{index}].content[{position}]", role, sample):
                reasoning_blocks += 1
        if reasoning_blocks == len(content):
            self._add(
                "content.reasoning_only",
                f"$.messages[{index}].content",
                "the turn has reasoning but no text: add the answer as a text block after the "
                "reasoningContent",
            )

    def _check_block(self, block: object, path: str, role: object, sample: SampleState) -> bool:
        """Checks one content block; True when it is a reasoningContent block."""
        if type(block) is not dict:
            self._type(path, block, "object")
            return False
        kinds = [key for key in block if key in _KINDS]
        if len(kinds) != 1:
            self._block_kinds(block, kinds, path, sample)
            return False
        kind = kinds[0]
        if len(block) != 1:
            self._keys(block, frozenset(kinds), (), path)  # one kind plus fields of no kind
        value = block[kind]
        kind_path = f"{path}.{kind}"
        allowed_role = _ROLE_OF_KIND.get(kind)
        if allowed_role is not None and role != allowed_role and role in ("user", "assistant"):
            self._add(
                "content.role",
                kind_path,
                f"{kind} blocks belong in {allowed_role} turns only: move the block to "
                f"{article(allowed_role)} turn",
            )
        if kind == "text":
            self._check_text(value, kind_path)
        elif kind in MEDIA_FORMATS:
            self._check_media(kind, value, kind_path, sample)
        elif kind == "reasoningContent":
            self._check_reasoning(value, kind_path, sample)
            return True
        elif kind == "toolUse":
            use_id = self._check_tool_use(value, kind_path, sample)
            if use_id is not None and role == "assistant":
                sample.open_uses[use_id] = kind_path
        else:  # toolResult
            result_id = self._check_tool_result(value, kind_path)
            if result_id is not None:
                self._pair_result(result_id, f"{kind_path}.toolUseId", sample)
        return False

    def _block_kinds(
        self, block: dict[str, Any], kinds: list[str], path: str, sample: SampleState
    ) -> None:
        """A block with no known kind, or with several: one finding that names what it holds."""
        if not kinds:
            keys = ", ".join(quote(key) for key in block) or "nothing"
            self._add(
                "content.block",
                path,
                f"the block holds none of {_BLOCK_KINDS} (it has {keys}): give it one kind",
            )
            return
        held = " and ".join(kinds)
        if "reasoningContent" in kinds:
            # Still a sample with reasoning: no second finding that says it has none.
            sample.reasoning_path = sample.reasoning_path or f"{path}.reasoningContent"
        if "reasoningContent" in kinds and any(kind in MEDIA_FORMATS for kind in kinds):
            why = "reasoning is allowed in text-only samples, and a block holds one kind"
        else:
            why = "a content block holds exactly one kind"
        self._add(
            "content.block",
            path,
            f"the block holds {held} together: {why}; split it into one block per kind",
        )

    def _pair_result(self, result_id: str, path: str, sample: SampleState) -> None:
        if result_id in sample.open_uses:
            del sample.open_uses[result_id]
            sample.answered.add(result_id)
        elif result_id in sample.answered:
            self._add(
                "tools.duplicate_result",
                path,
                f"toolUse {quote(result_id)} is answered more than once: keep one toolResult "
                "per toolUse",
            )
        else:
            self._add(
                "tools.result_unmatched",
                path,
                f"toolResult {quote(result_id)} answers no toolUse of the previous assistant "
                "turn: fix the id or add the toolUse",
            )

    def _report_unanswered(self, open_uses: dict[str, str]) -> None:
        for use_id, path in open_uses.items():
            self._add(
                "tools.unanswered",
                f"{path}.toolUseId",
                f"toolUse {quote(use_id)} is not answered by a toolResult in the next user turn: "
                "add the result there, or end the sample with this assistant turn",
            )

    def _check_reasoning(self, value: object, path: str, sample: SampleState) -> None:
        if not sample.reasoning_path:
            sample.reasoning_path = path
        if type(value) is not dict:
            self._type(path, value, "object")
            return
        if len(value) != 1 or "reasoningText" not in value:
            self._keys(value, _REASONING_KEYS, ("reasoningText",), path)
        inner = value.get("reasoningText", ABSENT)
        if inner is ABSENT:
            return
        path += ".reasoningText"
        if type(inner) is not dict:
            self._type(path, inner, "object")
            return
        if len(inner) != 1 or "text" not in inner:
            self._keys(inner, _REASONING_TEXT_KEYS, ("text",), path)
        if "text" in inner:
            self._check_text(inner["text"], f"{path}.text")
