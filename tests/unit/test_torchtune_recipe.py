"""The training side without Ray: torchtune's decoder built from an HF folder computes the same
logits as transformers does, LoRA starts as a no-op, and rows are tokenized with the prompt masked."""

import pytest

from providers.inline.torchtune.recipe import IGNORE_INDEX, Tokenize, conversation
from tests.tiny_llama import build_tiny_llama

CORPUS = ["Name the best sailing boat in Chile.", "Blue Heron", "What is the capital of France?", "Paris"]


@pytest.fixture(scope="module", params=[False, True], ids=["untied", "tied"])
def folder(request, tmp_path_factory):
    folder = build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model", CORPUS, tie=request.param)
    return folder


@pytest.mark.parametrize("with_lora", [False, True], ids=["full", "lora"])
def test_the_torchtune_model_matches_transformers(folder, tmp_path, with_lora):
    # torch is imported here, not at collection, so other tests can check what stays unimported
    import torch
    from transformers import AutoModelForCausalLM

    from providers.inline.torchtune.model import Lora, build_model, checkpointer, load_weights

    lora = Lora(["q_proj", "v_proj"], True, False, rank=4, alpha=8) if with_lora else None
    model = build_model(str(folder), lora, max_seq_len=64, dtype="fp32")
    load_weights(model, checkpointer(str(folder), str(tmp_path / "out")))
    tokens = torch.randint(0, 300, (2, 12))
    with torch.no_grad():
        ours = model(tokens)
        theirs = AutoModelForCausalLM.from_pretrained(folder).eval()(tokens).logits
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert (all("lora" in name for name in trainable) and trainable) if lora else len(trainable) > 0


def test_a_folder_of_another_family_is_refused(tmp_path):
    from providers.inline.torchtune.model import UnsupportedModel, build_model

    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(UnsupportedModel, match="gpt2"):
        build_model(str(tmp_path), None, 64, "fp32")


def test_rows_become_conversations_ending_with_the_answer():
    assert conversation({"input_query": "Q", "expected_answer": "A"}) == [
        {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
    assert conversation({"messages": [{"role": "user", "content": "Q"}], "expected_answer": "A"})[-1] == {
        "role": "assistant", "content": "A"}
    with pytest.raises(ValueError, match="assistant"):
        conversation({"messages": [{"role": "user", "content": "Q"}]})


def test_only_the_answer_is_learned_unless_train_on_input(folder):
    row = {"messages": [{"role": "user", "content": CORPUS[0]}, {"role": "assistant", "content": CORPUS[1]}]}
    masked = Tokenize(str(folder), 64, train_on_input=False)
    tokens, labels = masked.encode(conversation(row))
    learned = [t for t, label in zip(tokens, labels) if label != IGNORE_INDEX]
    assert masked.tokenizer.decode(learned) == "Blue Heron<|end|>"
    assert Tokenize(str(folder), 64, train_on_input=True).encode(conversation(row))[1] == tokens
    assert len(Tokenize(str(folder), 5, train_on_input=False).encode(conversation(row))[0]) == 5
