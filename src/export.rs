//! The CSV of a statistic's published values, one row a figure with its provenance: the same
//! bytes from `pqwatch series export ID --csv` and the web front's download. Pure.

use crate::store::SeriesDetail;

/// The header row's column names, in order.
pub const CSV_COLUMNS: &str = "statistic_id,statistic,unit,cell,period_key,period,row,column,raw,value,kind,change,question_id,uin,house,date_answered,version,table_index,grid_row,grid_col,is_correction,url";

/// Every value of `d`, oldest first, under [`CSV_COLUMNS`].
pub fn series_csv(d: &SeriesDetail) -> String {
    let mut out = String::from(CSV_COLUMNS);
    out.push('\n');
    for v in &d.values {
        let fields = [
            d.summary.id.to_string(),
            d.summary.title.clone(),
            d.summary.unit.clone(),
            v.cell.clone(),
            v.period_key.clone(),
            v.period.clone().unwrap_or_default(),
            v.row.join(" / "),
            v.column.join(" / "),
            v.raw.clone(),
            v.value.map(|x| x.to_string()).unwrap_or_default(),
            v.kind.clone(),
            v.change.clone().unwrap_or_default(),
            v.source.question_id.to_string(),
            v.source.uin.clone().unwrap_or_default(),
            v.source.house.clone().unwrap_or_default(),
            v.source
                .date_answered
                .map(|d| d.to_string())
                .unwrap_or_default(),
            v.source.version.to_string(),
            v.source.table_index.to_string(),
            v.source.cell[0].to_string(),
            v.source.cell[1].to_string(),
            v.source.is_correction.to_string(),
            v.source.url.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// RFC 4180 quoting; a leading =, +, - or @ is prefixed with ' so that a spreadsheet never
/// runs text from an answer as a formula.
fn csv_field(f: &str) -> String {
    let f = if f.starts_with(['=', '+', '@']) || (f.starts_with('-') && f.parse::<f64>().is_err()) {
        format!("'{f}")
    } else {
        f.to_owned()
    };
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_from_answers_are_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("-3.5"), "-3.5");
        assert_eq!(csv_field("-x"), "'-x");
    }
}
