"""The builtin scoring functions, their params and aggregations (no Ray)."""

import asyncio

import pytest

from deployments.services.datasets import check_rows
from deployments.services.scoring_functions import aggregate, check_scored_rows, resolve, score
from providers.api.errors import InvalidRequestError

ROWS = [
    {"input_query": "Capital of France?", "expected_answer": "Paris", "generated_answer": "Paris"},
    {"input_query": "Capital of Peru?", "expected_answer": "Lima", "generated_answer": "It is Lima, I think."},
    {"input_query": "Capital of Chile?", "expected_answer": "Santiago", "generated_answer": "Valparaíso"},
]


async def test_equality_and_subset_of():
    functions = resolve({"basic::equality": None, "basic::subset_of": None}, "scoring_functions")
    equality = await score("basic::equality", functions["basic::equality"], ROWS)
    subset = await score("basic::subset_of", functions["basic::subset_of"], ROWS)
    assert [r["score"] for r in equality["score_rows"]] == [1.0, 0.0, 0.0]
    assert [r["score"] for r in subset["score_rows"]] == [1.0, 1.0, 0.0]
    assert subset["aggregated_results"] == {"accuracy": 2 / 3, "num_correct": 2.0, "num_total": 3}


async def test_llama_stacks_question_and_answer_columns_are_checked_and_scored_as_input_query_and_expected_answer():
    rows = [{"messages": [{"role": "user", "content": "Capital of France?"}], "answer": "Paris", "generated_answer": "Paris"},
            {"question": "Capital of Peru?", "answer": "Lima", "generated_answer": "Cusco"}]
    check_rows("eval/messages-answer", rows[:1], "source.rows")
    check_rows("eval/question-answer", rows[1:], "source.rows")
    with pytest.raises(InvalidRequestError, match="needs 'expected_answer' \\(or 'answer'\\)") as refused:
        check_rows("eval/messages-answer", [{"messages": rows[0]["messages"]}], "source.rows")
    assert refused.value.param == "source.rows.0.expected_answer"
    functions = resolve({"basic::equality": None}, "scoring_functions")
    equality = await score("basic::equality", functions["basic::equality"], rows)
    assert [r["score"] for r in equality["score_rows"]] == [1.0, 0.0]
    prompts = []

    async def judge(prompt):
        prompts.append(prompt)
        return "Score: 3"

    judged = resolve({"llm-as-judge::base": {"type": "llm_as_judge", "judge_model": "j"}}, "scoring_functions")
    await score("llm-as-judge::base", judged["llm-as-judge::base"], rows, judge)
    assert "Capital of France?" in prompts[0] and "Lima" in prompts[1]


async def test_multiple_choice_letters_are_parsed_with_the_default_or_given_regexes():
    rows = [{"expected_answer": "B", "generated_answer": "The answer is (B)."},
            {"expected_answer": "c", "generated_answer": "C) because it rains"},
            {"expected_answer": "A", "generated_answer": "Answer: D"},
            {"expected_answer": "A", "generated_answer": "no idea"},
            {"expected_answer": "A", "generated_answer": "I pick A"}]
    fn = "basic::regex_parser_multiple_choice_answer"
    default = await score(fn, resolve({fn: None}, "f")[fn], rows)
    assert [r["score"] for r in default["score_rows"]] == [1.0, 1.0, 0.0, 0.0, 0.0]
    custom = resolve({fn: {"type": "regex_parser", "parsing_regexes": [r"pick ([A-D])"]}}, "f")[fn]
    assert [r["score"] for r in (await score(fn, custom, rows))["score_rows"]] == [0.0, 0.0, 0.0, 0.0, 1.0]


async def test_the_judge_reads_its_score_and_keeps_its_feedback():
    prompts = []

    async def judge(prompt: str) -> str:
        prompts.append(prompt)
        return "Score: 5" if "Paris" in prompt.split("Answer to grade:")[1] else "I cannot tell."

    fn = "llm-as-judge::base"
    params = resolve({fn: {"type": "llm_as_judge", "judge_model": "judge"}}, "f")[fn]
    result = await score(fn, params, ROWS, judge)
    assert [r["score"] for r in result["score_rows"]] == [5.0, None, None]
    assert result["score_rows"][1]["judge_feedback"] == "I cannot tell."
    assert result["aggregated_results"] == {"average": 5.0}
    assert "Expected answer: Lima" in prompts[1]


@pytest.mark.parametrize("functions, param", [
    ({"basic::nope": None}, "f"),
    ({"llm-as-judge::base": None}, "f.llm-as-judge::base.judge_model"),
    ({"basic::equality": {"type": "llm_as_judge"}}, "f.basic::equality.type"),
    ({"basic::equality": {"aggregation_functions": ["mode"]}}, "f.basic::equality.aggregation_functions.0"),
])
def test_bad_scoring_params_name_the_field(functions, param):
    with pytest.raises(InvalidRequestError) as raised:
        resolve(functions, "f")
    assert raised.value.param == param


def test_aggregations():
    rows = [{"score": 1.0}, {"score": 3.0}, {"score": 2.0}, {"score": None}]
    assert aggregate(rows, ["average", "median", "categorical_count"]) == {
        "average": 2.0, "median": 2.0, "categorical_count": {"1.0": 1, "3.0": 1, "2.0": 1, "None": 1}}


REGEX_FN = "basic::regex_parser_multiple_choice_answer"
JUDGE_FN = "llm-as-judge::base"


@pytest.mark.parametrize("regex, why", [(r"(a)\1", "not supported"), (r"(?<=x)a", "not supported"),
                                        ("a" * 1001, "at most 1000 characters")])
def test_regexes_re2_cannot_run_are_refused_naming_the_regex(regex, why):
    with pytest.raises(InvalidRequestError, match=why) as refused:
        resolve({REGEX_FN: {"type": "regex_parser", "parsing_regexes": [regex]}}, "f")
    assert refused.value.param == f"f.{REGEX_FN}.parsing_regexes"


async def test_a_catastrophic_backtracking_regex_runs_in_linear_time():
    params = resolve({REGEX_FN: {"type": "regex_parser", "parsing_regexes": ["(a+)+$"]}}, "f")[REGEX_FN]
    rows = [{"expected_answer": "a", "generated_answer": "a" * 40_000 + "!"}] * 50
    result = await asyncio.wait_for(score(REGEX_FN, params, rows), timeout=10)
    assert [r["score"] for r in result["score_rows"]] == [0.0] * 50


@pytest.mark.parametrize("template", ["{x}", "{input_query:>999999999}", "{input_query.__class__}", "{0}", "lone {"])
def test_judge_templates_fill_only_the_row_fields(template):
    with pytest.raises(InvalidRequestError, match="is not a placeholder") as refused:
        resolve({JUDGE_FN: {"type": "llm_as_judge", "judge_model": "j", "prompt_template": template}}, "f")
    assert refused.value.param == f"f.{JUDGE_FN}.prompt_template"


async def test_a_judge_template_with_literal_braces_fills_the_fields():
    template = 'Reply as {{"score": n}}. Q: {input_query} A: {generated_answer}'
    params = resolve({JUDGE_FN: {"type": "llm_as_judge", "judge_model": "j", "prompt_template": template}}, "f")[JUDGE_FN]
    prompts = []

    async def judge(prompt):
        prompts.append(prompt)
        return "Score: 4"

    await score(JUDGE_FN, params, ROWS[:1], judge)
    assert prompts == ['Reply as {"score": n}. Q: Capital of France? A: Paris']


def test_rows_without_the_columns_a_function_reads_are_refused_before_scoring():
    functions = resolve({JUDGE_FN: {"type": "llm_as_judge", "judge_model": "j"}}, "f")
    with pytest.raises(InvalidRequestError, match="input_rows.1: a row needs 'input_query'"):
        check_scored_rows(functions, [ROWS[0], {"expected_answer": "x"}], "input_rows", generated=True)
    check_scored_rows(functions, [{"input_query": "q", "expected_answer": "x"}], "input_rows", generated=True)
