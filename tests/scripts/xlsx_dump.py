#!/usr/bin/env python3
"""Dumps an xlsx workbook as JSON, read by openpyxl (a reader that is not vscout's), for
the end-to-end tests to compare with vscout's own records.

usage: xlsx_dump.py WORKBOOK.xlsx > dump.json

Per sheet: "headers", "rows" (cells as JSON: numbers as numbers, text as strings, dates
as {"date": "YYYY-MM-DDTHH:MM:SS"}, empty cells as null), "freeze" (the top-left cell
of the unfrozen pane), "filter" (the autofilter's range) and "widths" (how many
columns have a width set).
"""
import datetime
import json
import sys

import openpyxl


def cell(v):
    if isinstance(v, datetime.datetime):
        return {"date": v.replace(microsecond=0).isoformat()}
    if isinstance(v, bool):
        return {"bool": v}
    return v


def main():
    wb = openpyxl.load_workbook(sys.argv[1], read_only=False)
    out = {"sheets": wb.sheetnames, "tabs": {}}
    for ws in wb.worksheets:
        rows = [[cell(c) for c in r] for r in ws.iter_rows(values_only=True)]
        headers = rows[0] if rows else []
        width = len(headers)
        body = [r[:width] + [None] * (width - len(r)) for r in rows[1:]]
        out["tabs"][ws.title] = {
            "headers": headers,
            "rows": body,
            "freeze": ws.freeze_panes,
            "filter": ws.auto_filter.ref,
            "widths": sum(d.max - d.min + 1 for d in ws.column_dimensions.values() if d.width and d.min),
        }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
