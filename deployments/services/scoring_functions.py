"""Scoring functions (Llama Stack's builtin ones) and their aggregations. Rows carry
`generated_answer`, `expected_answer` and, for the judge, `input_query`; each function gives a
`score` per row. The judge is any async callable from a prompt to the judge model's reply."""

from __future__ import annotations

import asyncio
import re
import statistics
from typing import Any, Awaitable, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from providers.api.datasets import canonical_row
from providers.api.errors import InvalidRequestError

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


class RegexParserParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["regex_parser"] = "regex_parser"
    parsing_regexes: list[str] = []
    aggregation_functions: list[Aggregation] = []


class LLMAsJudgeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["llm_as_judge"] = "llm_as_judge"
    judge_model: str = ""
    prompt_template: str | None = None
    judge_score_regexes: list[str] = []
    aggregation_functions: list[Aggregation] = []


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
        except ValueError as exc:
            raise InvalidRequestError(f"{where}.{fn_id}: {exc}", param=f"{where}.{fn_id}") from None
        if isinstance(resolved[fn_id], LLMAsJudgeParams) and not resolved[fn_id].judge_model:
            raise InvalidRequestError(f"{where}.{fn_id}.judge_model: the judge needs a model",
                                      param=f"{where}.{fn_id}.judge_model")
    return resolved


async def score(fn_id: str, params: ScoringParams, rows: list[dict[str, Any]], judge: Judge | None = None) -> dict[str, Any]:
    """{"score_rows": [{"score": ...}, ...], "aggregated_results": {...}} over `rows`."""
    rows = [canonical_row(row) for row in rows]
    if fn_id == "llm-as-judge::base":
        score_rows = list(await asyncio.gather(*(_judge(params, row, judge) for row in rows)))
    else:
        score_rows = [{"score": _basic(fn_id, params, row)} for row in rows]
    return {"score_rows": score_rows, "aggregated_results": aggregate(score_rows, params.aggregation_functions)}


def _basic(fn_id: str, params: ScoringParams, row: dict[str, Any]) -> float:
    generated, expected = _text(row, "generated_answer").strip(), _text(row, "expected_answer").strip()
    if fn_id == "basic::equality":
        return float(generated == expected)
    if fn_id == "basic::subset_of":
        return float(expected in generated)
    for pattern in params.parsing_regexes:
        match = re.search(pattern, generated, flags=re.MULTILINE)
        if match:
            return float(match.group(1).upper() == expected.upper())
    return 0.0


async def _judge(params: LLMAsJudgeParams, row: dict[str, Any], judge: Judge | None) -> dict[str, Any]:
    prompt = (params.prompt_template or JUDGE_TEMPLATE).format(
        input_query=_text(row, "input_query"), expected_answer=_text(row, "expected_answer"),
        generated_answer=_text(row, "generated_answer"))
    reply = await judge(prompt)
    for pattern in params.judge_score_regexes:
        match = re.search(pattern, reply)
        if match:
            return {"score": float(match.group(1)), "judge_feedback": reply}
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
