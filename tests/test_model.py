import torch

from synthgen.model import ModelConfig, Synthesizer, count_parameters, forward_flops_per_task
from synthgen.params import ModelParams
from synthgen.tasks import make_tasks
from synthgen.tokenizer import PAD, ExampleTokenizer, ProgramTokenizer


def tiny(universe, **sizes):
    dims = dict(encoder_layers=2, decoder_layers=1, width=32, heads=4, dropout=0.0) | sizes
    return ModelConfig.from_params(ModelParams(**dims), universe.grammar)


def batch(universe, ids, k=6):
    tasks = make_tasks(universe, ids, k, "test", 0)
    examples = torch.from_numpy(ExampleTokenizer.for_grammar(universe.grammar).encode_tasks(tasks))
    programs = torch.from_numpy(ProgramTokenizer.for_grammar(universe.grammar).encode_universe(universe, ids))
    return examples, programs


def test_shapes_and_loss_on_program_tokens_only(universe, valid_ids):
    torch.manual_seed(0)
    cfg = tiny(universe)
    model = Synthesizer(cfg).eval()
    examples, programs = batch(universe, valid_ids[:5])
    logits, loss = model(examples, programs)
    assert logits.shape == (5, cfg.max_length - 1, cfg.program_vocab)
    targets = programs[:, 1:]
    manual = torch.nn.functional.cross_entropy(logits[targets != PAD], targets[targets != PAD])
    torch.testing.assert_close(loss, manual)


def test_encoder_treats_examples_as_a_set_and_decoder_is_causal(universe, valid_ids):
    torch.manual_seed(0)
    model = Synthesizer(tiny(universe)).eval()
    examples, programs = batch(universe, valid_ids[100:104])
    logits, _ = model(examples, programs)
    shuffled, _ = model(examples[:, torch.randperm(examples.shape[1])], programs)
    torch.testing.assert_close(logits, shuffled, rtol=1e-5, atol=1e-5)
    changed = programs.clone()
    changed[:, 4] = (changed[:, 4] + 1) % model.cfg.program_vocab
    later, _ = model(examples, changed)
    torch.testing.assert_close(later[:, :4], logits[:, :4])  # positions before 4 cannot see it


def test_non_embedding_parameters_and_flops(universe):
    cfg = tiny(universe)
    model = Synthesizer(cfg)
    W = cfg.width
    # per encoder layer 12 W^2 + 2 LayerNorm gains; per decoder layer 16 W^2 + 3; final 2 LayerNorms
    expected = cfg.encoder_layers * (12 * W * W + 2 * W) + cfg.decoder_layers * (16 * W * W + 3 * W) + 2 * W
    assert count_parameters(model) == expected
    embeddings = (cfg.example_vocab + cfg.program_vocab + cfg.max_length) * W  # the head is tied
    assert count_parameters(model, non_embedding=False) == expected + embeddings
    # forward FLOPs >= 2 per weight per position that weight sees (plus attention and head)
    k, t = 6, cfg.max_length - 1
    by_weights = 2 * (cfg.encoder_layers * 12 * W * W * k + cfg.decoder_layers * (14 * W * W * t + 2 * W * W * k))
    assert by_weights < forward_flops_per_task(cfg, k) < 1.5 * by_weights + 2 * W * cfg.program_vocab * t


def test_bf16_autocast_path_agrees_with_fp32(universe, valid_ids):
    # under CPU autocast the attention is the plain product (see Attention.forward)
    torch.manual_seed(0)
    model = Synthesizer(tiny(universe)).eval()
    examples, programs = batch(universe, valid_ids[200:208])
    exact, _ = model(examples, programs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        approx, _ = model(examples, programs)
    torch.testing.assert_close(approx.float(), exact, rtol=0.05, atol=0.05)
    changed = programs.clone()
    changed[:, 4] = (changed[:, 4] + 1) % model.cfg.program_vocab
    with torch.autocast("cpu", dtype=torch.bfloat16):
        later, _ = model(examples, changed)
    torch.testing.assert_close(later[:, :4], approx[:, :4])  # causal there too
