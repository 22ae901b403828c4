"""ROOT reading: round trips through files written by uproot, the real files, and every error path."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from hepml_core.exceptions import ConfigError, DataError, InputFileError, MissingKeyError
from hepml_core.io.root import list_trees, read_root, root_columns
from hepml_core.io.source import SourceSpec, list_columns, parse_source, read_frame

N = 3000


def _events(seed: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 7, N)
    return {
        "x": rng.normal(size=N),
        "nhit": rng.integers(0, 50, N).astype(np.int32),
        "flag": rng.random(N) < 0.3,
        "jet_pt": ak.unflatten(rng.exponential(30, counts.sum()).astype(np.float32), counts),
        "jet_q": ak.unflatten(rng.integers(-1, 2, counts.sum()).astype(np.int32), counts),
    }


@pytest.fixture
def events() -> dict[str, object]:
    return _events()


@pytest.fixture
def root_file(tmp_path: Path, events: dict[str, object]) -> Path:
    """A TTree with flat (float, int, bool) and jagged (float, int) branches, written by uproot."""
    path = tmp_path / "events.root"
    with uproot.recreate(path) as f:
        tree = f.mktree("Events", {"x": "float64", "nhit": "int32", "flag": "bool",
                                   "jet_pt": "var * float32", "jet_q": "var * int32"})  # fmt: skip
        tree.extend(events)
    return path


# ------------------------------------------------------------------ round trips


def test_flat_branches_round_trip(root_file: Path, events: dict) -> None:
    df = read_root(root_file, "Events", ["x", "nhit", "flag"])
    assert list(df.columns) == ["x", "nhit", "flag"]
    np.testing.assert_array_equal(df["x"].to_numpy(), events["x"])
    np.testing.assert_array_equal(df["nhit"].to_numpy(), events["nhit"])
    np.testing.assert_array_equal(df["flag"].to_numpy(), events["flag"])


def test_jagged_branch_becomes_padded_columns_and_count(root_file: Path, events: dict) -> None:
    df = read_root(root_file, "Events", ["jet_pt"], jagged_width=3)
    assert list(df.columns) == ["jet_pt_0", "jet_pt_1", "jet_pt_2", "jet_pt_n"]
    jets = events["jet_pt"]
    np.testing.assert_array_equal(df["jet_pt_n"].to_numpy(), ak.num(jets).to_numpy())
    for i in range(3):
        expected = ak.to_numpy(ak.fill_none(ak.pad_none(jets, 3, clip=True)[:, i], np.nan))
        np.testing.assert_array_equal(df[f"jet_pt_{i}"].to_numpy(), expected)
    assert df["jet_pt_0"].dtype == np.float32
    # events with fewer jets than the width are padded with NaN, never with 0
    assert df.loc[df["jet_pt_n"] == 0, "jet_pt_0"].isna().all()


def test_jagged_int_branch_is_float_with_nan(root_file: Path, events: dict) -> None:
    df = read_root(root_file, "Events", ["jet_q_1"])
    assert list(df.columns) == ["jet_q_1"]
    assert df["jet_q_1"].dtype == np.float64
    one = ak.num(events["jet_q"]).to_numpy() >= 2
    np.testing.assert_array_equal(df["jet_q_1"].to_numpy()[one], ak.to_numpy(events["jet_q"][one][:, 1]))
    assert np.isnan(df["jet_q_1"].to_numpy()[~one]).all()


def test_all_columns_in_file_order(root_file: Path) -> None:
    cols = root_columns(root_file, jagged_width=2)
    # uproot writes a counter branch (njet_pt) before each jagged branch
    assert cols == ["x", "nhit", "flag", "njet_pt", "jet_pt_0", "jet_pt_1", "jet_pt_n",
                    "njet_q", "jet_q_0", "jet_q_1", "jet_q_n"]  # fmt: skip
    assert list(read_root(root_file, jagged_width=2).columns) == cols
    assert list_columns(f"{root_file}:Events", jagged_width=2) == cols


def test_chunked_read_equals_single_read(root_file: Path) -> None:
    whole = read_root(root_file, "Events", step_size=10_000_000)
    chunked = read_root(root_file, "Events", step_size=250, progress=True)
    assert len(whole) == N
    assert whole.equals(chunked)


def test_rntuple_written_by_default_uproot_is_read(tmp_path: Path, events: dict) -> None:
    path = tmp_path / "nt.root"
    with uproot.recreate(path) as f:
        f["Events"] = {"x": events["x"], "jet_pt": events["jet_pt"]}  # uproot 5.7 writes an RNTuple
    df = read_frame(path, ["x", "jet_pt_0", "jet_pt_n"])
    np.testing.assert_array_equal(df["x"].to_numpy(), events["x"])
    np.testing.assert_array_equal(df["jet_pt_n"].to_numpy(), ak.num(events["jet_pt"]).to_numpy())


# ------------------------------------------------------------------ source specs


def test_parse_source_forms(root_file: Path, tmp_path: Path) -> None:
    assert parse_source(f"{root_file}:Events") == SourceSpec(root_file, "root", "Events")
    assert parse_source(root_file) == SourceSpec(root_file, "root", "Events")  # the only tree
    for name, fmt in [("a.parquet", "parquet"), ("b.pq", "parquet"), ("c.parquet.gzip", "parquet"),
                      ("d.csv", "csv"), ("e.csv.gz", "csv")]:  # fmt: skip
        (tmp_path / name).write_bytes(b"")
        assert parse_source(tmp_path / name).fmt == fmt
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(InputFileError, match=r"f\.txt.*accepted"):
        parse_source(tmp_path / "f.txt")


def test_several_trees_need_a_name(tmp_path: Path) -> None:
    path = tmp_path / "two.root"
    with uproot.recreate(path) as f:
        f.mktree("sig", {"x": "float64"}).extend({"x": np.arange(3.0)})
        f.mktree("bkg", {"x": "float64"}).extend({"x": np.arange(5.0)})
    assert set(list_trees(path)) == {"sig", "bkg"}
    with pytest.raises(ConfigError, match=r"two\.root.*'sig'.*'bkg'"):
        parse_source(path)
    with pytest.raises(ConfigError, match=r"two\.root"):
        read_root(path)
    assert len(read_frame(f"{path}:bkg")) == 5


def test_tree_in_subdirectory_and_file_without_tree(tmp_path: Path) -> None:
    path = tmp_path / "sub.root"
    with uproot.recreate(path) as f:
        f.mktree("dir/Events", {"x": "float64"}).extend({"x": np.arange(4.0)})
    assert parse_source(path).tree == "dir/Events"
    assert read_frame(f"{path}:dir/Events")["x"].tolist() == [0.0, 1.0, 2.0, 3.0]
    hist = tmp_path / "hist.root"
    with uproot.recreate(hist) as f:
        f["h"] = np.histogram([1.0, 2.0, 3.0])
    with pytest.raises(InputFileError, match=r"hist\.root contains no TTree"):
        read_frame(hist)


# ------------------------------------------------------------------ error paths


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.root"
    with pytest.raises(InputFileError, match=r"nope\.root not found"):
        read_root(missing, "Events")
    with pytest.raises(InputFileError, match=r"nope\.root not found"):
        read_frame(f"{missing}:Events")


def test_not_a_root_file(tmp_path: Path) -> None:
    path = tmp_path / "fake.root"
    path.write_text("run,event\n1,2\n")
    with pytest.raises(InputFileError, match=r"fake\.root is not a ROOT file"):
        read_root(path, "Events")


@pytest.mark.parametrize("keep", [0.5, 10])
def test_truncated_file(root_file: Path, tmp_path: Path, keep: float) -> None:
    data = root_file.read_bytes()
    cut = tmp_path / "cut.root"
    cut.write_bytes(data[: int(len(data) * keep)] if keep < 1 else data[:keep])
    with pytest.raises(InputFileError, match=r"cut\.root is truncated") as info:
        read_root(cut, "Events")
    assert "\n" not in str(info.value)


def test_bit_flips_in_the_middle(root_file: Path, tmp_path: Path) -> None:
    data = bytearray(root_file.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 8] = bytes(b ^ 0xFF for b in data[mid : mid + 8])
    bad = tmp_path / "flipped.root"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputFileError, match=r"flipped\.root.*corrupt") as info:
        read_root(bad, "Events")
    assert info.value.__cause__ is not None  # the library error is kept as the cause
    assert "\n" not in str(info.value)


def test_missing_tree_suggests_closest(root_file: Path) -> None:
    expected = r"tree 'Event' not found in file .*events\.root; closest: 'Events'"
    with pytest.raises(MissingKeyError, match=expected):
        read_root(root_file, "Event")


def test_missing_branch_suggests_closest(root_file: Path) -> None:
    with pytest.raises(MissingKeyError) as info:
        read_root(root_file, "Events", ["x", "jet_ptt"])
    msg = str(info.value)
    assert "branch 'jet_ptt' not found in tree 'Events' of file" in msg
    assert "events.root" in msg and "'jet_pt'" in msg


def test_element_beyond_jagged_width(root_file: Path) -> None:
    with pytest.raises(DataError, match=r"'jet_pt_5'.*'jet_pt'.*events\.root.*jagged_width=6"):
        read_root(root_file, "Events", ["jet_pt_5"], jagged_width=4)


def test_bad_settings(root_file: Path) -> None:
    with pytest.raises(ConfigError, match="jagged_width"):
        read_root(root_file, "Events", jagged_width=-1)
    with pytest.raises(ConfigError, match="step_size"):
        read_root(root_file, "Events", step_size="lots")


def test_object_is_not_a_tree(shared_data: Path) -> None:
    path = shared_data / "root" / "uproot-issue-750.root"
    with pytest.raises(DataError, match=r"'h_Muon_pt' in file .*uproot-issue-750\.root is a TH1D"):
        read_root(path, "h_Muon_pt")


def test_string_branch_is_rejected_by_name(shared_data: Path) -> None:
    path = shared_data / "root" / "uproot-Zmumu.root"
    assert "Type" not in root_columns(path)  # left out of "read everything"
    with pytest.raises(DataError, match=r"branch 'Type' in tree 'events' of file .*uproot-Zmumu\.root"):
        read_root(path, "events", ["Type", "M"])


# ------------------------------------------------------------------ real files


def test_cms_hzz_jagged_collections(shared_data: Path) -> None:
    path = shared_data / "root" / "uproot-HZZ.root"
    df = read_frame(f"{path}:events", ["Muon_Px", "NMuon", "EventWeight"], jagged_width=2)
    assert list(df.columns) == ["Muon_Px_0", "Muon_Px_1", "Muon_Px_n", "NMuon", "EventWeight"]
    ref = uproot.open(path)["events"].arrays(["Muon_Px", "NMuon", "EventWeight"])
    assert len(df) == len(ref) == 2421
    np.testing.assert_array_equal(df["Muon_Px_n"].to_numpy(), ref["NMuon"].to_numpy())
    padded = ak.to_numpy(ak.fill_none(ak.pad_none(ref["Muon_Px"], 2, clip=True), np.nan))
    np.testing.assert_array_equal(df[["Muon_Px_0", "Muon_Px_1"]].to_numpy(), padded)
    np.testing.assert_array_equal(df["EventWeight"].to_numpy(), ref["EventWeight"].to_numpy())


def test_nanoaod_many_branches(shared_data: Path) -> None:
    path = shared_data / "root" / "nanoAOD_2015_CMS_Open_Data_ttbar.root"
    tree = uproot.open(path)["Events"]
    cols = list_columns(path, jagged_width=1)
    assert len(tree.keys()) == 947
    assert {"run", "genWeight", "Jet_pt_0", "Jet_pt_n", "GenPart_pdgId_0"} <= set(cols)
    df = read_frame(path, ["Jet_pt_0", "Jet_pt_n", "nJet", "genWeight", "Jet_hadronFlavour_0"])
    ref = tree.arrays(["Jet_pt", "nJet", "genWeight"])
    np.testing.assert_array_equal(df["Jet_pt_n"].to_numpy(), ref["nJet"].to_numpy())
    has = df["Jet_pt_n"].to_numpy() > 0
    np.testing.assert_array_equal(df["Jet_pt_0"].to_numpy()[has], ak.to_numpy(ref["Jet_pt"][has][:, 0]))
    np.testing.assert_array_equal(df["genWeight"].to_numpy(), ref["genWeight"].to_numpy())


def test_alice_hypertriton_nested_struct(shared_data: Path) -> None:
    path = shared_data / "root" / "uproot-issue-85.root"
    cols = list_columns(path)
    assert {"pt", "gPt", "tofNsig_pr", "hasTOF_pi", "gReconstructed"} <= set(cols)
    df = read_frame(path, ["pt", "tofNsig_pr", "hasTOF_pr", "gReconstructed"])
    leaf = "SHyperTriton/RHyperTriton3O2/RHyperTriton/"
    ref = uproot.open(path)["Hyp3O2"].arrays([leaf + "pt", leaf + "tofNsig_pr"], library="np")
    assert len(df) == 39308
    np.testing.assert_array_equal(df["pt"].to_numpy(), ref[leaf + "pt"])
    np.testing.assert_array_equal(df["tofNsig_pr"].to_numpy(), ref[leaf + "tofNsig_pr"])
    reco = df["gReconstructed"].to_numpy()
    assert reco.sum() == 7602  # documented in the data README
    assert df.loc[reco, "hasTOF_pr"].sum() == 4435
    # the same leaf can also be asked for by its full branch path
    assert read_frame(path, [leaf + "pt"]).columns.tolist() == ["pt"]


def test_c_struct_and_jagged_records_are_flattened(shared_data: Path) -> None:
    path = shared_data / "root" / "uproot-issue429.root"
    df = read_frame(path, ["data_ana_kk_Mphi", "data_ana_kk_MphiK_1"])
    ref = uproot.open(path)["data_tr"]["data_ana_kk"].array(library="np")
    np.testing.assert_array_equal(df["data_ana_kk_Mphi"].to_numpy(), ref["Mphi"])
    np.testing.assert_array_equal(df["data_ana_kk_MphiK_1"].to_numpy(), ref["MphiK"][:, 1])
    lep = read_frame(shared_data / "root" / "uproot-issue57.root", ["sel_lep_fE_0", "sel_lep_fP_fX_n"])
    ref57 = uproot.open(shared_data / "root" / "uproot-issue57.root")["outtree"]["sel_lep"].array()
    np.testing.assert_array_equal(lep["sel_lep_fP_fX_n"].to_numpy(), ak.num(ref57).to_numpy())
    has = ak.num(ref57).to_numpy() > 0
    np.testing.assert_array_equal(lep["sel_lep_fE_0"].to_numpy()[has], ak.to_numpy(ref57[has][:, 0]["fE"]))
