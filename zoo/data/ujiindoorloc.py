"""Wi-Fi fingerprints for building and floor localisation: the UJIIndoorLoc CSV files, and
generated fingerprints with the same schema.

UJIIndoorLoc (Torres-Sospedra et al. 2014, UCI): one row per fingerprint, 520 received
signal strengths WAP001..WAP520 in dBm (100 = access point not detected), then LONGITUDE,
LATITUDE, FLOOR, BUILDINGID, SPACEID, RELATIVEPOSITION, USERID, PHONEID, TIMESTAMP;
three buildings with 4, 4 and 5 floors (13 building-floors); ``trainingData.csv`` (19,937
rows) and ``validationData.csv`` (1,111 rows, the test set of Kim, Lee & Huang 2018). The
user supplies the files (zoo never downloads).

Preprocessing (Kim, Lee & Huang 2018, "A scalable deep neural network architecture for
multi-building and multi-floor indoor localization based on Wi-Fi fingerprinting"): an
undetected access point reads as -110 dBm, below any detected one; the paper's code then
standardises each fingerprint (scikit-learn ``scale(axis=1)``), here the strengths are
scaled to [0, 1] instead (``(rssi + 110) / 110``), one fixed map for every split, which a
sigmoid autoencoder layer can also reconstruct.
"""

from __future__ import annotations

import os

import numpy as np

from zoo.data.base import Dataset, DatasetNotFoundError
from zoo.data.synthetic import split_seeds

NUM_ACCESS_POINTS = 520
WAP_COLUMNS = tuple(f"WAP{i:03d}" for i in range(1, NUM_ACCESS_POINTS + 1))
LABEL_COLUMNS = (
    "LONGITUDE",
    "LATITUDE",
    "FLOOR",
    "BUILDINGID",
    "SPACEID",
    "RELATIVEPOSITION",
    "USERID",
    "PHONEID",
    "TIMESTAMP",
)
COLUMNS = WAP_COLUMNS + LABEL_COLUMNS
NOT_DETECTED = 100  # the files' value for an access point the phone did not hear
WEAKEST_DBM = -110.0  # what an undetected access point reads as (Kim et al. 2018)
UJI_FLOORS_PER_BUILDING = (4, 4, 5)
FILES = {"train": "trainingData.csv", "test": "validationData.csv"}


def normalise_rssi(rssi: np.ndarray) -> np.ndarray:
    """Strengths in dBm ``(N, 520)`` with 100 for "not detected" -> float32 in [0, 1]:
    undetected and anything at or below -110 dBm give 0, 0 dBm gives 1."""
    rssi = np.asarray(rssi, np.float64)
    dbm = np.where(rssi == NOT_DETECTED, WEAKEST_DBM, rssi)
    return np.clip((dbm - WEAKEST_DBM) / -WEAKEST_DBM, 0.0, 1.0).astype(np.float32)


def building_floor_class(building: np.ndarray, floor: np.ndarray, floors_per_building) -> np.ndarray:
    """The building-floor class ``(N,)`` int32 of each fingerprint: building 0's floors come
    first (0..3 in UJIIndoorLoc), then building 1's (4..7), ... Raises ValueError for a
    building or floor outside ``floors_per_building``."""
    counts = np.asarray(floors_per_building)
    building, floor = np.asarray(building, np.int64), np.asarray(floor, np.int64)
    if building.size and (building.min() < 0 or building.max() >= len(counts)):
        raise ValueError(f"building ids must be in [0, {len(counts)}), got {building.min()} to {building.max()}")
    bad = (floor < 0) | (floor >= counts[building])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"building {building[i]} has {counts[building[i]]} floors, but a fingerprint is on floor {floor[i]}"
        )
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return (offsets[building] + floor).astype(np.int32)


def read_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """One UJIIndoorLoc CSV file -> ``{column: (N,) array}`` for every column of `COLUMNS`
    (``"rssi"``: the 520 strengths as ``(N, 520)`` int). DatasetNotFoundError for a missing
    file, ValueError for a header that is not the UJIIndoorLoc schema or a row that is not
    numbers."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DatasetNotFoundError(f"no UJIIndoorLoc file at {path!r}: download the UCI set and pass its folder")
    with open(path, newline="") as f:
        header = tuple(name.strip().strip('"') for name in f.readline().strip().split(","))
    if header != COLUMNS:
        missing = [c for c in COLUMNS if c not in header]
        raise ValueError(
            f"{path} is not a UJIIndoorLoc file: expected {len(COLUMNS)} columns WAP001..WAP520, "
            f"{', '.join(LABEL_COLUMNS)}; got {len(header)} columns"
            + (f", missing {', '.join(missing[:5])}" if missing else " in another order")
        )
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: a row is not {len(COLUMNS)} numbers ({err})") from None
    columns = {name: table[:, NUM_ACCESS_POINTS + i] for i, name in enumerate(LABEL_COLUMNS)}
    return {"rssi": table[:, :NUM_ACCESS_POINTS].astype(np.int32), **columns}


def write_csv(path: str | os.PathLike, columns: dict[str, np.ndarray]) -> None:
    """Write fingerprints (`read_csv`'s layout: ``"rssi"`` ``(N, 520)`` and each of
    `LABEL_COLUMNS`) as a UJIIndoorLoc CSV file, integers as integers."""
    table = np.column_stack([columns["rssi"], *(columns[name] for name in LABEL_COLUMNS)])
    formats = ["%d"] * NUM_ACCESS_POINTS + ["%.4f", "%.4f"] + ["%d"] * (len(LABEL_COLUMNS) - 2)
    np.savetxt(path, table, fmt=formats, delimiter=",", header=",".join(COLUMNS), comments="")


def generate_fingerprints(
    num_examples: int,
    *,
    seed: int = 0,
    site_seed: int = 0,
    floors_per_building=UJI_FLOORS_PER_BUILDING,
    noise_db: float = 8.0,
    floor_loss_db: float = 3.0,
) -> dict[str, np.ndarray]:
    """Fingerprints in `read_csv`'s layout from a log-distance path-loss model, for tests
    and the localisation experiment when the real files are absent.

    Buildings are 60 x 40 m rectangles 100 m apart along the x axis, floors 4 m high; the
    520 access points are shared among the floors (40 per floor with UJIIndoorLoc's 13),
    each at a random place on its floor. A fingerprint is taken on a random building and
    floor, at a random place: strength ``-30 - 10 * 3.5 log10(d / 1 m) - floor_loss_db per
    floor between`` plus Gaussian ``noise_db``, in whole dBm; below -90 dBm the phone does not
    hear the access point (100). ``site_seed`` places the access points, ``seed`` draws the
    fingerprints: the same seeds give the same rows.
    """
    counts = np.asarray(floors_per_building, np.int64)
    if counts.ndim != 1 or len(counts) == 0 or (counts < 1).any() or counts.sum() > NUM_ACCESS_POINTS:
        raise ValueError(f"floors_per_building must be positive floor counts, got {floors_per_building!r}")
    if int(num_examples) < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples!r}")
    if noise_db < 0 or floor_loss_db < 0:
        raise ValueError(f"noise_db and floor_loss_db must be >= 0, got {noise_db!r} and {floor_loss_db!r}")
    # Every building-floor as (building, floor); access point i sits on building-floor
    # i mod (number of building-floors).
    building_floors = np.array([(b, f) for b in range(len(counts)) for f in range(counts[b])])
    ap_place = _positions(
        np.random.default_rng(site_seed), building_floors[np.arange(NUM_ACCESS_POINTS) % len(building_floors)]
    )
    rng = np.random.default_rng(seed)
    where = building_floors[rng.integers(len(building_floors), size=int(num_examples))]
    place = _positions(rng, where)  # (N, 3) metres
    distance = np.maximum(np.linalg.norm(place[:, None, :] - ap_place[None, :, :], axis=-1), 1.0)
    floors_between = np.abs(np.round(place[:, None, 2] - ap_place[None, :, 2]) / 4.0)
    rssi = (
        -30.0
        - 35.0 * np.log10(distance)
        - floor_loss_db * floors_between
        + noise_db * rng.standard_normal(distance.shape)
    )
    rssi = np.round(rssi).astype(np.int32)
    rssi = np.where(rssi < -90, NOT_DETECTED, np.minimum(rssi, 0))
    n = len(where)
    return {
        "rssi": rssi,
        "LONGITUDE": place[:, 0],
        "LATITUDE": place[:, 1],
        "FLOOR": where[:, 1],
        "BUILDINGID": where[:, 0],
        "SPACEID": np.zeros(n, np.int64),
        "RELATIVEPOSITION": np.full(n, 2),
        "USERID": np.zeros(n, np.int64),
        "PHONEID": np.zeros(n, np.int64),
        "TIMESTAMP": np.zeros(n, np.int64),
    }


def _positions(rng: np.random.Generator, building_floors: np.ndarray) -> np.ndarray:
    """``(N, 2)`` (building, floor) -> ``(N, 3)`` random places on those floors, in metres."""
    n = len(building_floors)
    x = 100.0 * building_floors[:, 0] + 60.0 * rng.random(n)
    y = 40.0 * rng.random(n)
    z = 4.0 * building_floors[:, 1] + 1.0  # phones and access points 1 m above the floor
    return np.stack([x, y, z], -1)


def _dataset(name: str, train: dict, test: dict, floors_per_building, description: str) -> Dataset:
    counts = tuple(int(c) for c in floors_per_building)
    return Dataset(
        name=name,
        task="classification",
        x_train=normalise_rssi(train["rssi"]),
        y_train=building_floor_class(train["BUILDINGID"], train["FLOOR"], counts),
        x_test=normalise_rssi(test["rssi"]),
        y_test=building_floor_class(test["BUILDINGID"], test["FLOOR"], counts),
        num_classes=sum(counts),
        class_names=tuple(f"building {b} floor {f}" for b in range(len(counts)) for f in range(counts[b])),
        description=description,
        model_config={"floors_per_building": counts},
    )


def load_ujiindoorloc(*, data_dir: str | None = None) -> Dataset:
    """UJIIndoorLoc (Torres-Sospedra et al. 2014) from ``data_dir`` holding trainingData.csv
    and validationData.csv (the official split; the validation file is the test set): x
    ``(N, 520)`` float32 in [0, 1] (`normalise_rssi`), y ``(N,)`` int32 building-floor
    class (`building_floor_class`: 13 classes, building 0's floors first). The floors per
    building are read from the files (4, 4, 5) and fix the localisation models' heads."""
    if data_dir is None:
        raise DatasetNotFoundError(
            "UJIIndoorLoc is read from files: download it from the UCI repository and pass "
            "data_dir=FOLDER (train.py: --data-dir FOLDER) holding trainingData.csv and validationData.csv"
        )
    splits = {split: read_csv(os.path.join(os.fspath(data_dir), file)) for split, file in FILES.items()}
    both = {k: np.concatenate([splits["train"][k], splits["test"][k]]) for k in ("BUILDINGID", "FLOOR")}
    buildings = both["BUILDINGID"].astype(np.int64)
    if buildings.min() < 0:
        raise ValueError(f"{data_dir}: negative BUILDINGID {buildings.min()}")
    floors_per_building = [int(both["FLOOR"][buildings == b].max(initial=-1)) + 1 for b in range(buildings.max() + 1)]
    return _dataset(
        "ujiindoorloc",
        splits["train"],
        splits["test"],
        floors_per_building,
        f"UJIIndoorLoc (Torres-Sospedra et al. 2014) from {data_dir}: trainingData.csv / "
        "validationData.csv; RSSI 100 (not detected) -> -110 dBm, scaled to [0, 1]; label the building-floor.",
    )


def wifi_fingerprints(
    *,
    seed: int = 0,
    num_examples: int = 2000,
    num_test_examples: int = 500,
    noise_db: float = 8.0,
    floor_loss_db: float = 3.0,
) -> Dataset:
    """Generated Wi-Fi fingerprints with UJIIndoorLoc's schema and buildings (`generate_fingerprints`:
    3 buildings with 4, 4 and 5 floors, 520 access points, log-distance path loss with
    Gaussian noise ``noise_db``, ``floor_loss_db`` per floor between), preprocessed as `load_ujiindoorloc`: x ``(N, 520)`` float32 in [0, 1],
    y ``(N,)`` int32 building-floor class (13)."""
    for key, value in (("num_examples", num_examples), ("num_test_examples", num_test_examples)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"wifi_fingerprints: {key} must be an integer >= 1, got {value!r}")
    train_seed, test_seed = split_seeds(seed, 2)
    # One site (the same access points) for both splits, different fingerprints.
    physics = {"site_seed": seed, "noise_db": noise_db, "floor_loss_db": floor_loss_db}
    train = generate_fingerprints(num_examples, seed=train_seed, **physics)
    test = generate_fingerprints(num_test_examples, seed=test_seed, **physics)
    return _dataset(
        "wifi_fingerprints",
        train,
        test,
        UJI_FLOORS_PER_BUILDING,
        f"Generated Wi-Fi fingerprints, UJIIndoorLoc schema: 3 buildings (4, 4, 5 floors), 520 access "
        f"points, log-distance path loss (exponent 3.5, {floor_loss_db} dB per floor), noise {noise_db} dB; "
        f"{num_examples} train / {num_test_examples} test, seed {seed}.",
    )
