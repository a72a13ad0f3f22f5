"""The training precision follows the CPU: bf16 autocast only where bf16 is computed in hardware."""

from discrete_diff.training.precision import cpu_flags, native_bf16

ZEN2 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse sse2 avx avx2 fma f16c\n"
SAPPHIRE_RAPIDS = "flags\t\t: fpu avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile\n"
AVX512_ONLY = "flags\t\t: fpu avx2 avx512f avx512bw avx512vl\n"
NEOVERSE_V1 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes sve bf16 i8mm\n"
NEOVERSE_N1 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull\n"


def test_flags_are_read_from_x86_and_arm_lines():
    assert {"avx2", "f16c"} <= cpu_flags(ZEN2)
    assert "bf16" in cpu_flags(NEOVERSE_V1)
    assert cpu_flags("model name\t: avx512_bf16 in a name is not a flag\n") == set()


def test_native_bf16_only_with_bf16_instructions():
    assert native_bf16(SAPPHIRE_RAPIDS) and native_bf16(NEOVERSE_V1)
    # AVX512 without its BF16 extension, or AVX2 alone, have no bf16 arithmetic: PyTorch converts around fp32.
    assert not native_bf16(AVX512_ONLY)
    assert not native_bf16(ZEN2)
    assert not native_bf16(NEOVERSE_N1)


def test_a_config_without_precision_trains_at_this_machines_choice(tmp_path):
    from conftest import sonnet_corpus

    from discrete_diff.commands.train import build_cli
    from discrete_diff.training.precision import fastest_precision

    corpus = sonnet_corpus(tmp_path / "corpus")
    common = ["--data.init_args.corpus", str(corpus), "--trainer.logger.init_args.save_dir", str(tmp_path)]
    chosen = build_cli(["--config", "shakespeare_char", *common])
    assert chosen.config["trainer"]["precision"] == fastest_precision()
    stated = build_cli(["--config", "tiny", *common])  # tiny says 32-true: a config that states it decides
    assert stated.config["trainer"]["precision"] == "32-true"
