"""Trains the iris classifier MLServer serves, from the dataset bundled inside scikit-learn (no download).

The same kind of model as the API's iris_svc.onnx (an SVC with calibrated probabilities, on the four iris features;
scikit-learn 1.9 deprecates SVC(probability=True) for this form), saved
with joblib where mlserver/iris/model-settings.json points. `make mlserver` runs it once; the file is not committed
(it is tied to the installed scikit-learn's version).

    python mlserver/train.py [--out mlserver/iris/model.joblib]
"""

import argparse
import os

import joblib
from sklearn.datasets import load_iris
from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import SVC


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(here, "iris", "model.joblib"))
    args = parser.parse_args()
    features, target = load_iris(return_X_y=True)
    model = CalibratedClassifierCV(SVC(random_state=0), ensemble=False).fit(features, target)
    tmp = f"{args.out}.tmp"
    joblib.dump(model, tmp)
    os.replace(tmp, args.out)  # never a half-written model for a server starting beside us
    print(f"trained a calibrated SVC on {len(features)} iris rows -> {args.out}")


if __name__ == "__main__":
    main()
