"""Scoring functions (Llama Stack's builtin ones) and their aggregations. Rows carry
`generated_answer`, `expected_answer` and, for the judge, `input_query`; each function gives a
`score` per row. The judge is any async callable from a prompt to the judge model's reply.

A caller's regexes run on RE2 (linear time: no pattern stalls a replica) and a judge template only
fills the three row fields, so neither can run away; both are checked when the request arrives."""

from __future__ import annotations

import asyncio
import functools
import re
import statistics
from typing import Any, Awaitable, Callable, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from providers.api.datasets import canonical_row
from providers.api.errors import InvalidRequestError, ProviderTimeoutError

Aggregation = Literal["accuracy", "average", "median", "categorical_count", "weighted_average"]
Judge = Callable[[str], Awaitable[str]]

JUDGE_TEMPLATE = """You are grading an answer against the expected answer.
Question: {input_query}
Expected answer: {expected_answer}
Answer to grade: {generated_answer}
Rate how well the answer matches the expected answer from 0 (wrong) to 5 (equivalent).
Reply with one line of the form "Score: <number>"."""
MULTIPLE_CHOICE_REGEXES = [r"(?i)answer\s*(?:is|:)\s*\(?([A-E])\)?", r"^\s*\(?([A-E])\)?(?:[.):\s]|$)"]


class BasicParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["basic"] = "basic"
    aggregation_functions: list[Aggregation] = []


SCORING_DEADLINE_S = 30.0
MAX_REGEXES = 16
MAX_REGEX_CHARS = 1000
MAX_TEMPLATE_CHARS = 16_000
TEMPLATE_FIELDS = ("input_query", "expected_answer", "generated_answer")
_TEMPLATE_PART = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


@functools.lru_cache(maxsize=256)
def compiled(pattern: str) -> re2._Regexp:
    """A caller's regex on RE2, multi-line, compiled once (validation and scoring share it); ValueError
    for what RE2 cannot run (backreferences, lookaround)."""
    if len(pattern) > MAX_REGEX_CHARS:
        raise ValueError(f"a regex is at most {MAX_REGEX_CHARS} characters")
    try:
        return re2.compile("(?m)" + pattern)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"regex {pattern!r} is not supported: {reason} (RE2 syntax: no backreferences or "
                         "lookaround)") from None


def _checked_regexes(patterns: list[str]) -> list[str]:
    if len(patterns) > MAX_REGEXES:
        raise ValueError(f"at most {MAX_REGEXES} regexes")
    for pattern in patterns:
        compiled(pattern)
    return patterns


def check_template(template: str) -> str:
    """A judge template names only the row fields, as `{input_query}`; `{{` and `}}` are literal braces."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise ValueError(f"prompt_template is at most {MAX_TEMPLATE_CHARS} characters")
    for part in _TEMPLATE_PART.finditer(template):
        if part.group(0) in ("{{", "}}"):
            continue
        if part.group(1) not in TEMPLATE_FIELDS:
            raise ValueError(f"prompt_template: {part.group(0)!r} is not a placeholder; use {{input_query}}, "
                             "{expected_answer} or {generated_answer}, and {{ }} for literal braces")
    return template


def fill_template(template: str, values: dict[str, str]) -> str:
    return _TEMPLATE_PART.sub(lambda m: m.group(0)[0] if m.group(0) in ("{{", "}}") else values[m.group(1)], template)


class RegexParserParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["regex_parser"] = "regex_parser"
    parsing_regexes: list[str] = []
    aggregation_functions: list[Aggregation] = []

    _regexes = field_validator("parsing_regexes")(_checked_regexes)


class LLMAsJudgeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["llm_as_judge"] = "llm_as_judge"
    judge_model: str = ""
    prompt_template: str | None = None
    judge_score_regexes: list[str] = []
    aggregation_functions: list[Aggregation] = []

    _regexes = field_validator("judge_score_regexes")(_checked_regexes)

    @field_validator("prompt_template")
    @classmethod
    def _safe_template(cls, template: str | None) -> str | None:
        return None if template is None else check_template(template)


ScoringParams = BasicParams | RegexParserParams | LLMAsJudgeParams
_PARAMS = {"basic": BasicParams, "regex_parser": RegexParserParams, "llm_as_judge": LLMAsJudgeParams}


class ScoringFn(BaseModel):
    identifier: str
    provider_id: str
    provider_resource_id: str
    type: Literal["scoring_function"] = "scoring_function"
    description: str
    return_type: dict[str, Any] = Field(default_factory=lambda: {"type": "number"})
    params: dict[str, Any]
    metadata: dict[str, Any] = {}


def _fn(identifier: str, description: str, params: BaseModel) -> ScoringFn:
    provider = identifier.split("::")[0]
    return ScoringFn(identifier=identifier, provider_id=provider, provider_resource_id=identifier,
                     description=description, params=params.model_dump())


BUILTIN: dict[str, ScoringFn] = {fn.identifier: fn for fn in (
    _fn("basic::equality", "1 when the generated answer equals the expected answer (whitespace trimmed)",
        BasicParams(aggregation_functions=["accuracy"])),
    _fn("basic::subset_of", "1 when the expected answer occurs in the generated answer",
        BasicParams(aggregation_functions=["accuracy"])),
    _fn("basic::regex_parser_multiple_choice_answer",
        "1 when the choice letter parsed from the generated answer is the expected one",
        RegexParserParams(parsing_regexes=MULTIPLE_CHOICE_REGEXES, aggregation_functions=["accuracy"])),
    _fn("llm-as-judge::base", "The judge model's score of the generated answer, read with judge_score_regexes",
        LLMAsJudgeParams(prompt_template=JUDGE_TEMPLATE, judge_score_regexes=[r"Score:\s*(\d+(?:\.\d+)?)"],
                         aggregation_functions=["average"])),
)}


def resolve(functions: dict[str, dict[str, Any] | None], where: str) -> dict[str, ScoringParams]:
    """Each named function's params: the caller's, over the builtin defaults; 400 for an unknown function."""
    resolved = {}
    for fn_id, params in functions.items():
        if fn_id not in BUILTIN:
            raise InvalidRequestError(f"{where}: unknown scoring function '{fn_id}' (known: {', '.join(BUILTIN)})",
                                      param=where)
        defaults = BUILTIN[fn_id].params
        given = {k: v for k, v in (params or {}).items() if v not in (None, [], "")}
        if given.get("type", defaults["type"]) != defaults["type"]:
            raise InvalidRequestError(f"{where}.{fn_id}.type: '{fn_id}' takes params of type '{defaults['type']}'",
                                      param=f"{where}.{fn_id}.type")
        try:
            resolved[fn_id] = _PARAMS[defaults["type"]].model_validate({**defaults, **given})
        except ValidationError as exc:
            error = exc.errors()[0]
            param = ".".join([where, fn_id, *map(str, error["loc"])])
            raise InvalidRequestError(f"{param}: {error['msg'].removeprefix('Value error, ')}", param=param) from None
        if isinstance(resolved[fn_id], LLMAsJudgeParams) and not resolved[fn_id].judge_model:
            raise InvalidRequestError(f"{where}.{fn_id}.judge_model: the judge needs a model",
                                      param=f"{where}.{fn_id}.judge_model")
    return resolved


def check_scored_rows(functions: dict[str, ScoringParams], rows: list[dict[str, Any]], where: str,
                      generated: bool = False) -> None:
    """400 naming the first row that lacks a column a function reads (`generated`: the answers are
    still to be generated)."""
    needed = {"expected_answer"} | ({"input_query"} if "llm-as-judge::base" in functions else set())
    needed |= set() if generated else {"generated_answer"}
    for i, row in enumerate(rows):
        canonical = canonical_row(row)
        for column in sorted(needed):
            if canonical.get(column) is None:
                raise InvalidRequestError(f"{where}.{i}: a row needs '{column}' to be scored", param=f"{where}.{i}")


async def score(fn_id: str, params: ScoringParams, rows: list[dict[str, Any]], judge: Judge | None = None) -> dict[str, Any]:
    """{"score_rows": [{"score": ...}, ...], "aggregated_results": {...}} over `rows`. Basic scoring
    runs in a worker thread, so a large request never holds the replica's event loop."""
    rows = [canonical_row(row) for row in rows]
    if fn_id == "llm-as-judge::base":
        regexes = [compiled(p) for p in params.judge_score_regexes]
        score_rows = list(await asyncio.gather(*(_judge(params, regexes, row, judge) for row in rows)))
    else:
        try:
            score_rows = await asyncio.wait_for(asyncio.to_thread(_basic_rows, fn_id, params, rows), SCORING_DEADLINE_S)
        except TimeoutError:
            raise ProviderTimeoutError(f"scoring {len(rows)} rows with '{fn_id}' took longer than {SCORING_DEADLINE_S:g} s; "
                                       "score fewer rows at a time") from None
    return {"score_rows": score_rows, "aggregated_results": aggregate(score_rows, params.aggregation_functions)}


def _basic_rows(fn_id: str, params: ScoringParams, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    regexes = [compiled(p) for p in getattr(params, "parsing_regexes", [])]
    return [{"score": _basic(fn_id, regexes, row)} for row in rows]


def _basic(fn_id: str, regexes: list[re2._Regexp], row: dict[str, Any]) -> float:
    generated, expected = _text(row, "generated_answer").strip(), _text(row, "expected_answer").strip()
    if fn_id == "basic::equality":
        return float(generated == expected)
    if fn_id == "basic::subset_of":
        return float(expected in generated)
    for regex in regexes:
        match = regex.search(generated)
        if match:
            return float(_group(match).upper() == expected.upper())
    return 0.0


def _group(match) -> str:
    """The first group, or the whole match of a regex without groups."""
    return (match.group(1) if match.re.groups else match.group(0)) or ""


async def _judge(params: LLMAsJudgeParams, regexes: list[re2._Regexp], row: dict[str, Any],
                 judge: Judge | None) -> dict[str, Any]:
    prompt = fill_template(params.prompt_template or JUDGE_TEMPLATE,
                           {field: _text(row, field) for field in TEMPLATE_FIELDS})
    reply = await judge(prompt)
    for regex in regexes:
        match = regex.search(reply)
        if match:
            try:
                return {"score": float(_group(match)), "judge_feedback": reply}
            except ValueError:
                continue
    return {"score": None, "judge_feedback": reply}


def _text(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if value is None:
        raise InvalidRequestError(f"input_rows: a row needs '{column}' to be scored", param="input_rows")
    return str(value)


def aggregate(score_rows: list[dict[str, Any]], functions: list[str]) -> dict[str, Any]:
    scores = [r["score"] for r in score_rows if isinstance(r.get("score"), (int, float))]
    results: dict[str, Any] = {}
    for name in functions:
        if name == "accuracy":
            results.update(accuracy=sum(scores) / len(scores) if scores else 0.0, num_correct=sum(scores),
                           num_total=len(score_rows))
        elif name in ("average", "weighted_average"):
            results[name] = statistics.fmean(scores) if scores else None
        elif name == "median":
            results["median"] = statistics.median(scores) if scores else None
        elif name == "categorical_count":
            counts: dict[str, int] = {}
            for r in score_rows:
                counts[str(r.get("score"))] = counts.get(str(r.get("score")), 0) + 1
            results["categorical_count"] = counts
    return results
