"""mmaux: multimodal classifiers of social media posts with ITC/ITM auxiliary losses, and the
tools to understand them (library, CLI, Streamlit dashboard)."""

__version__ = "0.1.0"
