"""Makes this folder's helper modules (node_test_estimates, node_process) importable by its tests."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
