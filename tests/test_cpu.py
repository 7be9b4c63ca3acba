from moksori.cpu import cpu_flags, native_bf16


def test_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    flags = cpu_flags(str(info))
    assert {"avx2", "avx512_bf16"} <= flags and native_bf16(flags)


def test_avx2_only_and_missing_cpuinfo_have_no_native_bf16(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("flags\t: fpu avx2 avx512f avx512_vnni\n")
    assert not native_bf16(cpu_flags(str(info)))
    assert cpu_flags(str(tmp_path / "absent")) == frozenset()
    assert native_bf16(frozenset({"amx_bf16"}))
