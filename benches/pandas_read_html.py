"""The comparison for benches/extract.rs: pandas.read_html (lxml) over the same answers.

Usage: python3 benches/pandas_read_html.py N   (prints one JSON line)
"""
import glob
import json
import os
import sys
import time
from io import StringIO

import pandas as pd

here = os.path.dirname(os.path.abspath(__file__))
files = sorted(glob.glob(os.path.join(here, "..", "tests", "fixtures", "corpus", "*.json")))
htmls = [json.load(open(f))["answer_html"] for f in files]
n = int(sys.argv[1])
cells = 0
nbytes = 0
start = time.perf_counter()
for i in range(n):
    html = htmls[i % len(htmls)]
    nbytes += len(html.encode())
    try:
        for df in pd.read_html(StringIO(html), flavor="lxml"):
            cells += df.size
    except ValueError:
        pass
secs = time.perf_counter() - start
print(json.dumps({"answers": n, "bytes": nbytes, "secs": secs, "cells": int(cells)}))
