"""Licence-free synthetic data: the stand-in hand (NOT MANO), procedural objects, pose sampling,
renderers (torch rasteriser, headless OpenGL) and random hands-and-object scenes. See docs/synthetic.md
and docs/mano.md."""
