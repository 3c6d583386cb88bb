//! URI normalisation and percent-decoding, as libhtp does them for `http.uri`.

/// Percent-decoding (`%41` → `A`); malformed escapes stay as they are.
pub fn percent_decode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'%' && i + 2 < data.len() {
            let hex = std::str::from_utf8(&data[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(data[i]);
        i += 1;
    }
    out
}

/// Percent-decoding of unreserved characters and removal of `./` and `../` segments, as the
/// normalised `http.uri` buffer has them.
pub fn normalize_uri(uri: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::with_capacity(uri.len());
    let mut i = 0;
    while i < uri.len() {
        if uri[i] == b'%' && i + 2 < uri.len() {
            let hex = std::str::from_utf8(&uri[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                decoded.push(b);
                i += 3;
                continue;
            }
        }
        decoded.push(uri[i]);
        i += 1;
    }
    let (path, query) = match decoded.iter().position(|&b| b == b'?') {
        Some(q) => (decoded[..q].to_vec(), decoded[q..].to_vec()),
        None => (decoded, Vec::new()),
    };
    let mut segments: Vec<&[u8]> = Vec::new();
    for seg in path.split(|&b| b == b'/') {
        match seg {
            b"." => {}
            b".." => {
                if segments.len() > 1 {
                    segments.pop();
                }
            }
            s => segments.push(s),
        }
    }
    let mut out = segments.join(&b'/');
    if path.ends_with(b"/.") || path.ends_with(b"/..") {
        out.push(b'/');
    }
    out.extend_from_slice(&query);
    out
}
