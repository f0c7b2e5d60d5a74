"""The napari oracle: a dock widget that shows a micrograph, the model's current picks and the regions it asks
about, takes the person's clicks as particle/background labels, retrains, and exports the picks.

Layers (one micrograph at a time, chosen in the widget): ``micrograph`` (the preprocessed image), ``picks``
(the model's picks, circles of the particle diameter), ``queries`` (the regions asked this round, yellow
squares), ``particle`` and ``background`` (the person's labels: click with the layer's add mode; the widget's
"particle"/"background" buttons select the layer). "retrain" adds the new clicks as answers, refits, and shows
the new picks and queries; "export" writes the picks as a RELION STAR file (original pixels).

Needs ``pip install 'cryopick-active[napari]'`` (napari with a Qt binding).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from cryopick_active.oracles import Answer


class ActiveWidget(QWidget):
    """Dock widget driving an :class:`~cryopick_active.session.ActiveSession` from napari."""

    def __init__(self, viewer, session, per_round: int = 10, rounds: int | None = None, on_round=None,
                 export_dir: str | Path = "active-picks") -> None:
        super().__init__()
        self.viewer, self.session, self.per_round, self.rounds = viewer, session, int(per_round), rounds
        self.on_round = on_round
        self.export_dir = Path(export_dir)
        self.names = sorted(session.items)
        self.current = self.names[0]
        self.pending: dict[str, dict[str, list]] = {}
        if session.model is None:
            session.fit()
        self.queries = session.propose(self.per_round)

        self.chooser = QComboBox()
        self.chooser.addItems(self.names)
        self.chooser.currentTextChanged.connect(self.show_micrograph)
        self.particle_button = QPushButton("particle (click)")
        self.background_button = QPushButton("background (click)")
        self.retrain_button = QPushButton("retrain")
        self.export_button = QPushButton("export STAR")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.particle_button.clicked.connect(lambda: self._select("particle"))
        self.background_button.clicked.connect(lambda: self._select("background"))
        self.retrain_button.clicked.connect(self.retrain)
        self.export_button.clicked.connect(lambda: self.export())
        layout = QVBoxLayout()
        layout.addWidget(self.chooser)
        row = QHBoxLayout()
        row.addWidget(self.particle_button)
        row.addWidget(self.background_button)
        layout.addLayout(row)
        layout.addWidget(self.retrain_button)
        layout.addWidget(self.export_button)
        layout.addWidget(self.status)
        self.setLayout(layout)

        d = session.diameter_px
        self.image_layer = viewer.add_image(session.image(self.current), name="micrograph")
        self.picks_layer = viewer.add_points(np.zeros((0, 2)), name="picks", size=d, face_color="transparent",
                                             border_color="cyan")
        self.queries_layer = viewer.add_points(np.zeros((0, 2)), name="queries", size=d, symbol="square",
                                               face_color="transparent", border_color="yellow")
        self.particle_layer = viewer.add_points(np.zeros((0, 2)), name="particle", size=d / 3, face_color="blue")
        self.background_layer = viewer.add_points(np.zeros((0, 2)), name="background", size=d / 3, face_color="red")
        self.show_micrograph(self.current)
        self._select("particle")

    # -- display --------------------------------------------------------------------------------------
    def _select(self, which: str) -> None:
        layer = self.particle_layer if which == "particle" else self.background_layer
        self.viewer.layers.selection.active = layer
        layer.mode = "add"

    def _stash(self) -> None:
        """Keep the clicks on the micrograph shown (not yet retrained on) when another one is shown."""
        self.pending[self.current] = {"particle": self.particle_layer.data.tolist(),
                                      "background": self.background_layer.data.tolist()}

    def show_micrograph(self, name: str) -> None:
        if name != self.current:
            self._stash()
        self.current = name
        self.image_layer.data = self.session.image(name)
        picks = self.session.picks([name])[name]
        self.picks_layer.data = np.stack([picks.y, picks.x], axis=1) if len(picks) else np.zeros((0, 2))
        here = [q for q in self.queries if q.name == name]
        self.queries_layer.data = np.array([[q.y, q.x] for q in here]) if here else np.zeros((0, 2))
        pend = self.pending.get(name, {})
        self.particle_layer.data = np.array(pend.get("particle") or np.zeros((0, 2)), dtype=float).reshape(-1, 2)
        self.background_layer.data = np.array(pend.get("background") or np.zeros((0, 2)), dtype=float).reshape(-1, 2)
        self._status()

    def _status(self, extra: str = "") -> None:
        pos, neg = self.session.n_labels()
        asked = {}
        for q in self.queries:
            asked[q.name] = asked.get(q.name, 0) + 1
        where = ", ".join(f"{n}: {c}" for n, c in sorted(asked.items()))
        done = len(self.session.reports)
        of = f" of {self.rounds}" if self.rounds else ""
        self.status.setText(f"round {done}{of} done; {pos} particles, {neg} background labelled. "
                            f"Asked (yellow): {where or 'none'}. Click particles / background, then retrain. {extra}")

    # -- actions --------------------------------------------------------------------------------------
    def answers(self) -> list[Answer]:
        """The clicks not yet retrained on, on every micrograph, as answers."""
        self._stash()
        out = []
        for name, pend in self.pending.items():
            for which, positive in (("particle", True), ("background", False)):
                for y, x in pend.get(which, []):
                    out.append(Answer(name, float(x), float(y), positive))
        return out

    def retrain(self):
        """Add the clicks as labels, refit, show the new picks and ask the next regions."""
        answers = self.answers()
        if not answers:
            self._status("(no new clicks)")
            return None
        report = self.session.finish_round(answers)
        self.pending = {}
        if self.on_round is not None:
            self.on_round(report)
        self.queries = self.session.propose(self.per_round)
        self.show_micrograph(self.current)
        self._status(report.line())
        return report

    def export(self, out: str | Path | None = None) -> list[Path]:
        """Write the current picks (the picker's default cut-off) of every micrograph as one RELION STAR file."""
        from cryopick.io.star import write_star

        picks = {}
        for name, c in self.session.picks().items():
            fx, fy = self.session.items[name].factor
            picks[name] = c.scaled((1 / fx, 1 / fy))
        files = write_star(picks, Path(out or self.export_dir))
        self._status(f"wrote {files[0]}" if files else "")
        return files


def run_napari(session, per_round: int, rounds: int, on_round=None, export_dir: str | Path = "active-picks") -> None:
    """Open napari with the widget and wait until the window is closed."""
    import napari

    viewer = napari.Viewer(title="cryopick active label")
    widget = ActiveWidget(viewer, session, per_round, rounds, on_round, export_dir)
    viewer.window.add_dock_widget(widget, name="active learning", area="right")
    napari.run()
