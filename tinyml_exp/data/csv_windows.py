"""Time series in CSV: a column per channel and a label column, cut into fixed windows.

Each window is `window` consecutive rows (N × window × channels, float32, values kept as they are),
the next starts `stride` rows later; windows never cross a change of `session_column` (a
recording) nor the train/test boundary. A window's label (`label_rule`): `majority` = the most
frequent label of its rows (a tie goes to the earliest class in `class_names`), `last` = the label
of its last row, `uniform` = only windows whose rows all share one label are kept.
The test split is `test_path`, or else the last `test_fraction` of each recording's rows.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tinyml_exp.data.base import Dataset
from tinyml_exp.errors import DataError
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import numpy as np

LABEL_RULES = ("majority", "last", "uniform")


@dataclass(frozen=True)
class Table:
    """Rows of one CSV: channel values (rows × channels), label strings, session strings."""

    values: np.ndarray
    labels: list[str]
    sessions: list[str]


def read_csv_table(path: Path, label_column: str, channels: list[str], session_column: str | None) -> Table:
    """Parse `path` (header row first); `DataError` naming the line of any bad value."""
    import numpy as np

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error, OSError) as e:
        raise DataError(f"{path} is not a readable UTF-8 CSV file ({type(e).__name__}: {e})") from e
    if not rows:
        raise DataError(f"{path} is empty; expected a header row naming the columns")
    header = [h.strip() for h in rows[0]]
    extra = {label_column, *([session_column] if session_column else [])}
    wanted = channels or [h for h in header if h not in extra]
    missing = [c for c in (*wanted, *sorted(extra)) if c not in header]
    if missing or not wanted:
        raise DataError(f"{path}: columns {missing or 'for channels'} not found; the header has {header}")
    cols = [header.index(c) for c in wanted]
    label_col = header.index(label_column)
    session_col = header.index(session_column) if session_column else None
    values = np.empty((len(rows) - 1, len(cols)), dtype=np.float32)
    labels, sessions = [], []
    for n, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise DataError(f"{path}:{n + 2}: {len(row)} fields but the header has {len(header)}")
        try:
            values[n] = [float(row[c]) for c in cols]
        except ValueError as e:
            raise DataError(f"{path}:{n + 2}: {e}") from e
        labels.append(row[label_col].strip())
        sessions.append(row[session_col].strip() if session_col is not None else "")
    if not np.all(np.isfinite(values)):
        raise DataError(f"{path}: channel values include NaN or infinity")
    return Table(values, labels, sessions)


def window_label(codes: np.ndarray, rule: str) -> int | None:
    """The label of one window's row labels (class indices) by `rule`; None = drop the window."""
    import numpy as np

    if rule == "last":
        return int(codes[-1])
    if rule == "uniform":
        return int(codes[0]) if np.all(codes == codes[0]) else None
    return int(np.argmax(np.bincount(codes)))  # argmax takes the first maximum: the earlier class


@register_option("dataset", "csv")
@dataclass
class CsvWindowsDataset(Dataset):
    test_path: str | None = None  # null: the last test_fraction of every recording is the test split
    label_column: str = "label"
    channels: list[str] = field(default_factory=list)  # [] = every column but label and session
    session_column: str | None = None  # windows never cross a change of this column's value
    window: int = 64  # rows per window
    stride: int = 32  # rows between window starts
    label_rule: str = "majority"  # majority | last | uniform
    test_fraction: float = 0.2
    class_names: list[str] = field(default_factory=list)  # [] = the sorted distinct labels

    def read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self.label_rule not in LABEL_RULES:
            raise DataError(f"dataset.label_rule={self.label_rule!r} is not one of {', '.join(LABEL_RULES)}")
        if self.window < 1 or self.stride < 1:
            raise DataError(f"dataset.window={self.window} and dataset.stride={self.stride} must be >= 1")
        if self.path is None:
            raise DataError("dataset.path is not set: point it at a CSV file with a header row")
        train = self._table(self.path)
        test = self._table(self.test_path) if self.test_path else None
        if not self.class_names:
            self.class_names = sorted(set(train.labels) | set(test.labels if test else []))
        if test is None:
            train, test = self._split(train)
        x_train, y_train = self._windows(train, self.path)
        x_test, y_test = self._windows(test, self.test_path or self.path)
        return x_train, y_train, x_test, y_test

    def _table(self, path: str) -> Table:
        where = Path(path).expanduser()
        if not where.is_file():
            raise DataError(f"{where}: no such CSV file")
        return read_csv_table(where, self.label_column, list(self.channels), self.session_column)

    def _split(self, table: Table) -> tuple[Table, Table]:
        """The first rows of every recording train, its last `test_fraction` test."""
        import numpy as np

        is_test = np.zeros(len(table.labels), dtype=bool)
        for rows in _sessions(table.sessions):
            n_test = round(len(rows) * self.test_fraction)
            is_test[rows[len(rows) - n_test :]] = True

        def part(mask: np.ndarray) -> Table:
            idx = np.flatnonzero(mask)
            return Table(table.values[idx], [table.labels[i] for i in idx], [table.sessions[i] for i in idx])

        return part(~is_test), part(is_test)

    def _windows(self, table: Table, path: str) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        index = {name: i for i, name in enumerate(self.class_names)}
        unknown = sorted(set(table.labels) - set(index))
        if unknown:
            raise DataError(f"{path}: labels {unknown[:5]} are not in dataset.class_names {self.class_names}")
        codes = np.array([index[label] for label in table.labels], dtype=np.int64)
        xs, ys = [], []
        for rows in _sessions(table.sessions):
            for start in range(rows[0], rows[-1] + 2 - self.window, self.stride):
                label = window_label(codes[start : start + self.window], self.label_rule)
                if label is not None:
                    xs.append(table.values[start : start + self.window])
                    ys.append(label)
        if not xs:
            raise DataError(
                f"{path}: no window of dataset.window={self.window} rows fits "
                f"({len(codes)} rows; label_rule={self.label_rule})"
            )
        return np.stack(xs), np.array(ys, dtype=np.int64)


def _sessions(sessions: list[str]) -> list[range]:
    """Runs of consecutive rows with one session value, as row ranges."""
    runs, start = [], 0
    for i in range(1, len(sessions) + 1):
        if i == len(sessions) or sessions[i] != sessions[start]:
            if i > start:
                runs.append(range(start, i))
            start = i
    return runs
