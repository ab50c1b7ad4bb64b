"""finar's forecasters: one contract (see :mod:`finar.models.base`), many models.

The contract (:class:`Forecaster`, :func:`create`, :func:`load`, the registry) and
:class:`Scenarios` import with the package; each model class is imported on first use, so
``finar.models.GARCH`` never imports torch and the neural models (``WaveNet``, ``Transformer``,
``PixelCNN``) import it only when they are first named.

>>> import finar
>>> finar.models.GARCH(dist="t").get_params()["dist"]
't'
"""

from finar._lazy import lazy_exports
from finar.models.base import Forecaster, UnivariateForecaster, clone, create, load, register, registry
from finar.models.predictive import Predictive
from finar.models.scenarios import Scenarios

#: model classes, imported on first access (see :mod:`finar._lazy`)
_LAZY = {
    "AR": "finar.models.ar",
    "Copula": "finar.models.copula",
    "DCC": "finar.models.dcc",
    "Ensemble": "finar.models.ensemble",
    "GARCH": "finar.models.garch",
    "GARCHX": "finar.models.garchx",
    "JointEnsemble": "finar.models.ensemble",
    "MarginalCopula": "finar.models.marginal_copula",
    "NeuralDCC": "finar.models.neural_dcc",
    "PixelCNN": "finar.models.pixelcnn",
    "RealizedGARCH": "finar.models.realized",
    "Transformer": "finar.models.transformer",
    "WaveNet": "finar.models.wavenet",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = ["AR", "Copula", "DCC", "Ensemble", "GARCH", "GARCHX", "JointEnsemble",
           "MarginalCopula", "NeuralDCC", "PixelCNN",
           "RealizedGARCH",
           "Transformer", "WaveNet",
           "Forecaster", "UnivariateForecaster", "Predictive", "Scenarios", "clone", "create", "load",
           "register", "registry"]
