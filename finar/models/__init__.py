"""finar's forecasters: one contract (see :mod:`finar.models.base`), many models."""

from finar.models.ar import AR
from finar.models.base import Forecaster, UnivariateForecaster, clone, create, load, register, registry
from finar.models.garch import GARCH
from finar.models.pixelcnn import PixelCNN
from finar.models.scenarios import Scenarios
from finar.models.transformer import Transformer
from finar.models.wavenet import WaveNet

__all__ = ["AR", "GARCH", "PixelCNN", "Transformer", "WaveNet", "Forecaster", "UnivariateForecaster",
           "Scenarios", "clone", "create", "load", "register", "registry"]
