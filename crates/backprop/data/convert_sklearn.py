#!/usr/bin/env python3
"""Rewrite scikit-learn's bundled dataset files as plain CSVs with a header row.

Reproduce with:
    pip download --no-deps scikit-learn==1.9.1 -d /tmp/skl
    cd /tmp/skl && unzip -q scikit_learn-*.whl 'sklearn/datasets/data/*'
    python3 convert_sklearn.py /tmp/skl/sklearn/datasets/data .

scikit-learn's files start with a line `n_samples,n_features,class names...`; the class column
holds class indices. Here every file gets a header of feature names and the last column holds
the class *name*, so the files read like any user CSV and the class names travel with the data.
Values are copied verbatim (no re-formatting of numbers).
"""
import csv
import gzip
import sys
from pathlib import Path

IRIS = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
WINE = [
    "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
    "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
    "od280_od315_of_diluted_wines", "proline",
]
_BC = ["radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
       "concave_points", "symmetry", "fractal_dimension"]
BREAST_CANCER = [f"mean_{f}" for f in _BC] + [f"{f}_error" for f in _BC] + [f"worst_{f}" for f in _BC]
DIGITS = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]


def convert(rows, features, target, classes, out):
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(features + [target])
        for row in rows:
            assert len(row) == len(features) + 1, row
            w.writerow(row[:-1] + [classes[int(row[-1])]])


def sklearn_rows(path, n, d):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        rows = [r for r in csv.reader(f) if r]
    if rows[0][0] == str(n):  # header line `n,d,class names`
        classes = rows[0][2:]
        rows = rows[1:]
    else:
        classes = None
    assert len(rows) == n and all(len(r) == d + 1 for r in rows), path
    return rows, classes


def main(src, dst):
    src, dst = Path(src), Path(dst)
    rows, classes = sklearn_rows(src / "iris.csv", 150, 4)
    convert(rows, IRIS, "species", classes, dst / "iris.csv")
    rows, classes = sklearn_rows(src / "wine_data.csv", 178, 13)
    convert(rows, WINE, "cultivar", classes, dst / "wine.csv")
    rows, classes = sklearn_rows(src / "breast_cancer.csv", 569, 30)
    convert(rows, BREAST_CANCER, "diagnosis", classes, dst / "breast_cancer.csv")
    rows, _ = sklearn_rows(src / "digits.csv.gz", 1797, 64)
    rows = [r[:-1] + [str(int(float(r[-1])))] for r in rows]
    convert(rows, DIGITS, "digit", [str(i) for i in range(10)], dst / "digits.csv")


if __name__ == "__main__":
    main(*sys.argv[1:3])
