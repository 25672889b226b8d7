"""mmaux dashboard entry point (placeholder until the dashboard pages land)."""
import streamlit as st

st.set_page_config(page_title="mmaux", layout="wide")
st.title("mmaux")
st.write("Multimodal classifiers with ITC/ITM auxiliary losses. The dashboard pages are being built.")
