"""The numeric core: recurrent cells, BPTT, Jacobians and weights, in numpy only."""

from app.rnn.cancel import Cancelled
from app.rnn.config import CELLS, HEADS, OUTPUT_MODES, ModelConfig
from app.rnn.params import INIT_SCHEMES, check_params, init_params, param_shapes
from app.rnn.spectrum import SpectrumBlock, recurrent_spectrum
from app.rnn.trace import Trace, backward_trace, diagnose_trace, forward_trace, run_sequence
from app.rnn.truncation import longest_path
from app.rnn.weights import load_weights, save_weights, weights_from_bytes, weights_to_bytes
from app.rnn.workload import TraceCost, estimate_trace_cost

__all__ = [
    "CELLS",
    "Cancelled",
    "HEADS",
    "INIT_SCHEMES",
    "OUTPUT_MODES",
    "ModelConfig",
    "SpectrumBlock",
    "Trace",
    "TraceCost",
    "backward_trace",
    "check_params",
    "diagnose_trace",
    "estimate_trace_cost",
    "forward_trace",
    "init_params",
    "load_weights",
    "longest_path",
    "param_shapes",
    "recurrent_spectrum",
    "run_sequence",
    "save_weights",
    "weights_from_bytes",
    "weights_to_bytes",
]
