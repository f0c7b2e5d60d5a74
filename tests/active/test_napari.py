"""The napari dock widget, headless (QT_QPA_PLATFORM=offscreen): it opens, takes clicks, retrains, exports.

The widget runs on napari's ``ViewerModel`` (the viewer without its OpenGL canvas: Qt's offscreen platform has no
OpenGL, so ``make_napari_viewer`` cannot draw here) and is held by pytest-qt's ``qtbot``; the buttons are
clicked as a person would."""

import os

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")


@pytest.fixture
def session(simulated_session):
    return simulated_session(shape=(192, 192), particles=12, snr=0.3, sim_seed=3, nuisances=False)


def test_widget_opens_takes_clicks_retrains_and_exports(qtbot, session, tmp_path):
    from napari.components import ViewerModel

    from cryopick_active.napari_widget import ActiveWidget

    session, truth = session
    viewer = ViewerModel()
    rounds = []
    widget = ActiveWidget(viewer, session, per_round=4, rounds=5, on_round=rounds.append, export_dir=tmp_path)
    qtbot.addWidget(widget)
    widget.show()
    names = [layer.name for layer in viewer.layers]
    assert names == ["micrograph", "picks", "queries", "particle", "background"]
    assert len(widget.queries) == 4
    first = widget.current
    # the person clicks three particles and one background spot (napari data is row, column)
    t = truth[first]
    widget.particle_layer.add(np.stack([t.y[:3], t.x[:3]], axis=1))
    widget.background_button.click()
    assert viewer.layers.selection.active is widget.background_layer
    widget.background_layer.add(np.array([[5.0, 5.0]]))
    picks_before = widget.picks_layer.data.copy()
    widget.retrain_button.click()
    assert len(rounds) == 1 and rounds[0].labels == 4 and rounds[0].positives == 3
    assert session.n_labels() == (3, 1)
    assert widget.particle_layer.data.shape == (0, 2)  # clicks became labels
    assert not np.array_equal(widget.picks_layer.data, picks_before)  # the picks follow the new model
    assert "round 1 of 5 done" in widget.status.text()
    # another micrograph: clicks are kept per micrograph until retrain
    widget.chooser.setCurrentText([n for n in session.items if n != first][0])
    widget.particle_layer.add(np.array([[50.0, 50.0]]))
    widget.chooser.setCurrentText(first)
    assert widget.particle_layer.data.shape == (0, 2)
    report = widget.retrain()
    assert report.labels == 5
    files = widget.export()
    assert files and files[0].suffix == ".star" and files[0].read_text().count("\n") > 5
