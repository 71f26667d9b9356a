"""Meter training data: photo folders split by meter, dev/ never trained on, rendered crops."""
import numpy as np
import pytest
from PIL import Image

from edge.core.errors import InputError
from edge.seeing import meter
from trainer import meter_data


def write_crops(folder, values, size=(24, 40)):
    folder.mkdir(parents=True, exist_ok=True)
    for i, value in enumerate(values):
        Image.new("RGB", size, (int(value * 25), 0, 0)).save(folder / f"{value:.1f}_{i}.jpg")


@pytest.fixture
def meter_tree(tmp_path):
    """train/ with three meters and an LCD, dev/ with one more meter."""
    for name, count in (("water_a", 12), ("water_b", 6), ("power_c", 6), ("lcd", 6)):
        write_crops(tmp_path / "train" / name, [round(i * 0.7 % 10, 1) for i in range(count)])
    write_crops(tmp_path / "dev" / "gas_d", [1.0, 2.5, 9.9])
    return tmp_path


def test_root_with_train_and_dev_trains_on_train_and_holds_out_dev(meter_tree):
    data = meter_data.load_photos(meter_tree, [], [], 0.2, seed=0)
    assert sorted(data.v_test.tolist()) == [1.0, 2.5, 9.9]
    assert len(data.v_train) + len(data.v_val) == 30
    assert data.groups["heldout"] == ["dev/*"]
    assert data.x_train.shape[1:] == (32, 20, 1) and data.x_train.dtype == np.uint8
    # validation is whole meters: no folder is in both
    assert data.groups["validation"] and len(data.v_val) in (6, 12)


def test_validation_split_zero_trains_on_every_meter(meter_tree):
    data = meter_data.load_photos(meter_tree, [], [], 0, seed=0)
    assert len(data.v_train) == 30 and len(data.v_val) == 0 and data.groups["validation"] == []
    assert sorted(data.v_test.tolist()) == [1.0, 2.5, 9.9]


def test_include_and_exclude_pick_the_meters_of_one_display_in_train_and_dev(meter_tree):
    write_crops(meter_tree / "dev" / "lcd_e", [3.0, 8.0])
    wheels = meter_data.load_photos(meter_tree, [], ["lcd*"], 0.2, seed=0)
    assert len(wheels.v_train) + len(wheels.v_val) == 24 and sorted(wheels.v_test.tolist()) == [1.0, 2.5, 9.9]
    lcds = meter_data.load_photos(meter_tree, ["lcd*"], [], 0, seed=0)
    assert len(lcds.v_train) == 6 and sorted(lcds.v_test.tolist()) == [3.0, 8.0]
    assert lcds.groups["include"] == ["lcd*"]
    with pytest.raises(InputError, match="no crops named .* with --include/--exclude"):
        meter_data.load_photos(meter_tree, [], ["*"], 0.2, seed=0)


def test_folder_without_dev_holds_out_whole_meters(meter_tree):
    data = meter_data.load_photos(meter_tree / "train", [], [], 0.2, seed=0)
    assert len(data.v_train) + len(data.v_val) + len(data.v_test) == 30
    held = set(data.groups["heldout"])
    assert held and held <= {"water_a", "water_b", "power_c", "lcd"}


def test_split_paths_keeps_groups_whole(tmp_path):
    paths = [tmp_path / g / f"{i}.jpg" for g, n in (("a", 5), ("b", 3), ("c", 2)) for i in range(n)]
    kept, held, groups = meter_data.split_paths(paths, tmp_path, 0.25, seed=3)
    assert sorted(kept + held) == list(range(10))
    names = {p.parent.name for p in (paths[i] for i in held)}
    assert names == set(groups) and not names & {paths[i].parent.name for i in kept}


def test_a_folder_too_large_for_the_share_is_never_held_out():
    groups = ["big"] * 100 + ["a"] * 5 + ["b"] * 5 + ["c"] * 5
    for seed in range(10):
        held = meter_data.hold_out_groups(groups, 0.1, seed)
        assert held and "big" not in held
    assert meter_data.hold_out_groups(["a"] * 50 + ["b"] * 50, 0.1, 0) == set()  # then a random share


def test_rendered_wheels_are_seeded_sized_and_cover_every_tenth_kind():
    x, values = meter_data.render_crops(60, seed=5, display="wheels")
    again, same_values = meter_data.render_crops(60, seed=5, display="wheels")
    assert x.shape == (60, 32, 20, 1) and x.dtype == np.uint8
    assert np.array_equal(x, again) and np.array_equal(values, same_values)
    assert values.min() >= 0 and values.max() < 10
    assert (meter.is_between(values)).any() and (~meter.is_between(values)).any()
    assert float(x.std()) > 10  # not blank


def test_each_display_renders_its_own_kind_and_fonts(monkeypatch):
    _, lcd_values = meter_data.render_crops(30, seed=5, display="lcd")
    assert np.array_equal(lcd_values, np.floor(lcd_values))  # LCD digits are whole values
    def no_dseg():
        raise AssertionError("LCD fonts looked up for a wheels render")
    monkeypatch.setattr(meter_data, "lcd_fonts", no_dseg)
    wheels, values = meter_data.render_crops(30, seed=5, display="wheels")
    assert wheels.shape == (30, 32, 20, 1) and (values != np.floor(values)).any()
    with pytest.raises(ValueError, match="display 'both'"):
        meter_data.render_crops(3, seed=5, display="both")


def test_drum_shows_the_next_digit_rolling_in_from_below():
    """At x.5 the wheel shows halves of two digits: ink in the top and in the bottom of the window,
    and at x.0 the digit sits in the middle with the gaps above and below it."""
    font = meter_data.wheel_fonts()[0]
    whole = meter_data.drum(4.0, font, np.random.default_rng(1))
    half = meter_data.drum(4.5, font, np.random.default_rng(1))
    def ink_rows(image):  # rows whose contrast to the drum's shade is high
        return (np.abs(image - np.median(image)).max(axis=1) > 60)
    rows = ink_rows(whole)
    third = len(rows) // 3
    assert rows[third:-third].all()
    middle = ink_rows(half)[len(rows) // 2 - 1 : len(rows) // 2 + 1]
    assert not middle.any()  # the gap between the 4 and the 5 crosses the centre


def test_a_narrow_window_cuts_both_sides_of_the_glyph():
    mask = np.tile(np.arange(10, dtype=np.float32), (3, 1))
    assert meter_data.centre_columns(mask, 6)[0].tolist() == [2, 3, 4, 5, 6, 7]
    assert meter_data.centre_columns(mask, 7)[0].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert meter_data.centre_columns(mask, 12).shape == (3, 10)  # a wider window leaves the glyph whole


def test_edge_marks_touch_only_the_edge_columns_of_about_half_the_crops():
    x = np.full((400, 32, 20, 1), 200, np.uint8)
    marked = meter_data.edge_marks(x, np.random.default_rng(0))
    changed = (marked != x).any(axis=(1, 2, 3))
    assert 0.3 < changed.mean() < 0.5  # half drawn, some of them get neither a bar nor dashes
    assert (marked[:, :, 3:17] == 200).all()  # the digit's middle columns never change
    assert (marked <= x).all() and int(marked.min()) < 90  # dark marks on a light drum
    assert (x == 200).all()  # a copy: the caller's array is left alone
    assert np.array_equal(marked, meter_data.edge_marks(x, np.random.default_rng(0)))


def test_neighbour_strips_come_from_the_same_meter_and_touch_only_the_side_columns():
    shade = np.r_[np.full(200, 40), np.full(200, 220)] + np.arange(400) % 5  # two meters, five frames each
    x = np.broadcast_to(shade[:, None, None, None], (400, 32, 20, 1)).astype(np.uint8)
    x[:, 4:28, 8:12] = 128  # every crop's digit stroke in the middle
    groups = ["dark"] * 200 + ["light"] * 200
    marked = meter_data.neighbour_strips(x, groups, np.random.default_rng(0))
    changed = (marked != x).any(axis=(1, 2, 3))
    assert 0.3 < changed.mean() < 0.5  # half drawn; a fifth of those from a frame that looks the same
    assert np.array_equal(marked[:, :, 5:15], x[:, :, 5:15])  # at most 5 columns at either side
    assert marked[:200].max() <= 128 and marked[200:].min() >= 128  # strips from the same meter only
    assert (marked[:, :, :5] == 128).any()  # a neighbour's stroke shows at an edge


def test_frame_rows_darken_only_the_top_and_bottom_rows():
    x = np.full((400, 32, 20, 1), 200, np.uint8)
    marked = meter_data.frame_rows(x, np.random.default_rng(0))
    changed = (marked != x).any(axis=(1, 2, 3))
    assert 0.15 < changed.mean() < 0.35
    assert np.array_equal(marked[:, 5:27], x[:, 5:27]) and (marked <= x).all() and int(marked.min()) < 100
    dashed = [i for i in np.flatnonzero(changed) if ((marked[i] != x[i]).any(axis=(0, 2))).sum() < 20]
    assert dashed  # some lines are dashed: not every column is touched


def test_photo_training_crops_get_region_context_and_validation_does_not(meter_tree, monkeypatch):
    marked = []
    monkeypatch.setattr(meter_data, "region_context",
                        lambda x, groups, rng: marked.append((len(x), len(groups))) or np.zeros_like(x))
    data = meter_data.load_photos(meter_tree, [], [], 0.2, seed=0)
    assert marked == [(len(data.v_train), len(data.v_train))] and not data.x_train.any()
    assert data.x_val.any() and data.x_test.any()


def test_printed_lines_sit_a_gap_away_from_the_digit_and_leave_it_whole():
    """A display's printed line above or below a digit (meter_digits/dev/lcd2) is separated from
    the digit by unlit rows, so the model can learn it is not a segment."""
    digit = np.zeros((40, 20), np.float32)
    digit[5:35, 4:16] = 1.0
    for seed in range(20):
        lined = meter_data.printed_lines(digit, 30, np.random.default_rng(seed))
        inked = np.flatnonzero(lined.max(axis=1) > 0.5)
        margin = (lined.shape[0] - digit.shape[0]) // 2
        assert lined.shape == (digit.shape[0] + 2 * margin, digit.shape[1]) and margin > 0
        assert np.array_equal(lined[margin + 5 : margin + 35], digit[5:35])  # the digit's rows untouched
        outside = [row for row in inked if not margin + 5 <= row < margin + 35]
        assert outside  # at least one line
        gaps = [margin + 4 - max(r for r in outside if r < margin + 5)] if any(r < margin + 5 for r in outside) else []
        gaps += [min(r for r in outside if r >= margin + 35) - (margin + 35)] if any(r >= margin + 35 for r in outside) else []
        assert min(gaps) >= 1  # never touching the digit
    blank = meter_data.printed_lines(np.zeros((10, 1), np.float32), 10, np.random.default_rng(0))
    assert blank.max() == 1.0  # a blank or one-column canvas still gets its line, no IndexError


def test_validation_split_takes_zero_and_display_picks_the_kind():
    import argparse

    from trainer import meter_train

    parser = argparse.ArgumentParser()
    meter_train.add_arguments(parser)
    assert parser.parse_args(["--validation-split", "0"]).validation_split == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["--validation-split", "1"])
    assert parser.parse_args([]).display == "wheels" and parser.parse_args(["--display", "lcd"]).display == "lcd"
    with pytest.raises(SystemExit):
        parser.parse_args(["--display", "mixed"])
