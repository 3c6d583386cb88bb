//! Payload keywords: contents and their modifiers, `pcre`, the `byte_*` family, `isdataat`,
//! `bsize`, sticky buffers (and the legacy modifiers that move a content into one) and buffer
//! transformations. They fill the rule's match lists through a [`Builder`].

use super::{
    values::{byte_flags, number, parse_range, split_args, usize_arg, val},
    Compiling, MatchList, Opt, Refusal, Transform,
};
use crate::detect::{
    matcher::{ByteExtract, ByteJump, ByteTest, Content, IsDataAt, Matcher, Pcre, PcreOpts},
    parse::content_bytes,
    Buffer,
};

/// The buffers a rule's payload keywords fill, and where the next keyword applies.
pub(super) struct Builder {
    pub(super) lists: Vec<MatchList>,
    pub(super) current: usize,
    pub(super) extract_vars: Vec<String>,
    pub(super) app: Option<&'static str>,
    /// Where the most recent content is: modifiers apply to it wherever a legacy modifier
    /// moved it.
    pub(super) last: Option<(usize, usize)>,
}

impl Builder {
    /// A builder whose current buffer is the payload; `app` is the header's protocol.
    pub(super) fn new(app: Option<&'static str>) -> Builder {
        Builder {
            lists: vec![MatchList {
                buffer: Buffer::Pkt,
                transforms: Vec::new(),
                matchers: Vec::new(),
            }],
            current: 0,
            extract_vars: Vec::new(),
            app,
            last: None,
        }
    }

    fn list(&mut self) -> &mut MatchList {
        &mut self.lists[self.current]
    }

    fn switch_to(&mut self, buffer: Buffer) {
        if let Some(i) = self.lists.iter().position(|l| l.buffer == buffer) {
            self.current = i;
        } else {
            self.lists.push(MatchList {
                buffer,
                transforms: Vec::new(),
                matchers: Vec::new(),
            });
            self.current = self.lists.len() - 1;
        }
    }

    fn last_content(&mut self, kw: &str) -> Result<&mut Content, Refusal> {
        let (l, m) = self
            .last
            .ok_or_else(|| Refusal::Invalid(format!("{kw} must follow a content")))?;
        match self
            .lists
            .get_mut(l)
            .and_then(|list| list.matchers.get_mut(m))
        {
            Some(Matcher::Content(c)) => Ok(c),
            _ => Err(Refusal::Invalid(format!("{kw} must follow a content"))),
        }
    }

    fn push_content(&mut self, c: Content) {
        self.list().matchers.push(Matcher::Content(c));
        self.last = Some((self.current, self.list().matchers.len() - 1));
    }

    /// Moves the most recent content into `buffer` (legacy content modifiers).
    fn move_last_content(&mut self, buffer: Buffer, kw: &str) -> Result<(), Refusal> {
        let (l, m) = self
            .last
            .ok_or_else(|| Refusal::Invalid(format!("{kw} must follow a content")))?;
        if self.lists[l].matchers.len() != m + 1 {
            return Err(Refusal::Invalid(format!("{kw} must follow its content")));
        }
        let Some(matcher) = self.lists[l].matchers.pop() else {
            return Err(Refusal::Invalid(format!("{kw} must follow a content")));
        };
        let keep = self.current;
        self.switch_to(buffer);
        self.list().matchers.push(matcher);
        self.last = Some((self.current, self.list().matchers.len() - 1));
        self.current = keep;
        Ok(())
    }

    /// Adds `m` to `buffer`'s list without making it the sticky buffer (a keyword that
    /// compares a field, such as `dns.opcode`).
    pub(super) fn push_to(&mut self, buffer: Buffer, m: Matcher) {
        let keep = self.current;
        self.switch_to(buffer);
        self.list().matchers.push(m);
        self.current = keep;
    }

    pub(super) fn require_app(&mut self, app: &'static str) -> Result<(), Refusal> {
        match self.app {
            Some(a) if a != app => Err(Refusal::Invalid(format!(
                "the rule mixes {a} and {app} buffers"
            ))),
            _ => {
                self.app = Some(app);
                Ok(())
            }
        }
    }
}

/// Legacy content modifiers and the sticky buffer each moves its content into.
fn modifier_buffer(name: &str) -> Option<Buffer> {
    Some(match name {
        "http_uri" => Buffer::HttpUri,
        "http_raw_uri" => Buffer::HttpUriRaw,
        "http_method" => Buffer::HttpMethod,
        "http_header" => Buffer::HttpHeader,
        "http_raw_header" => Buffer::HttpHeaderRaw,
        "http_cookie" => Buffer::HttpCookie,
        "http_user_agent" => Buffer::HttpUserAgent,
        "http_host" => Buffer::HttpHost,
        "http_raw_host" => Buffer::HttpHostRaw,
        "http_client_body" => Buffer::HttpRequestBody,
        "http_server_body" => Buffer::HttpResponseBody,
        "http_stat_code" => Buffer::HttpStatCode,
        "http_stat_msg" => Buffer::HttpStatMsg,
        _ => return None,
    })
}

fn parse_pcre(v: &str, b: &mut Builder) -> Result<(), Refusal> {
    // The pattern goes to PCRE as written (only the quotes come off): `\\`, `\;` and
    // `\"` are regex escapes that PCRE itself reads.
    let t = v.trim();
    let (negated, t) = match t.strip_prefix('!') {
        Some(r) => (true, r.trim_start()),
        None => (false, t),
    };
    let raw = t
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(t)
        .to_string();
    let (negated, raw) = match raw.strip_prefix('!') {
        Some(r) => (true, r.to_string()),
        None => (negated, raw),
    };
    let body = raw
        .strip_prefix('/')
        .ok_or_else(|| Refusal::Invalid("pcre must look like \"/pattern/flags\"".into()))?;
    let end = body
        .rfind('/')
        .ok_or_else(|| Refusal::Invalid("pcre pattern is not closed with /".into()))?;
    let (pattern, flags) = (&body[..end], &body[end + 1..]);
    let mut opts = PcreOpts::default();
    let mut buffer: Option<Buffer> = None;
    let mut relative = false;
    for f in flags.chars() {
        match f {
            'i' => opts.caseless = true,
            's' => opts.dotall = true,
            'm' => opts.multiline = true,
            'x' => opts.extended = true,
            'A' => opts.anchored = true,
            'E' => opts.dollar_endonly = true,
            'G' => opts.ungreedy = true,
            'R' => relative = true,
            'O' | 'B' => {}
            'U' => buffer = Some(Buffer::HttpUri),
            'I' => buffer = Some(Buffer::HttpUriRaw),
            'P' => buffer = Some(Buffer::HttpRequestBody),
            'Q' => buffer = Some(Buffer::HttpResponseBody),
            'H' => buffer = Some(Buffer::HttpHeader),
            'D' => buffer = Some(Buffer::HttpHeaderRaw),
            'M' => buffer = Some(Buffer::HttpMethod),
            'C' => buffer = Some(Buffer::HttpCookie),
            'S' => buffer = Some(Buffer::HttpStatCode),
            'Y' => buffer = Some(Buffer::HttpStatMsg),
            'V' => buffer = Some(Buffer::HttpUserAgent),
            'W' => buffer = Some(Buffer::HttpHost),
            'Z' => buffer = Some(Buffer::HttpHostRaw),
            other => return Err(Refusal::UnsupportedKeyword(format!("pcre flag {other}"))),
        }
    }
    let pcre =
        Pcre::new(pattern, opts, relative, negated).map_err(|e| Refusal::Invalid(e.to_string()))?;
    if let Some(buf) = buffer {
        b.require_app("http")?;
        let keep = b.current;
        b.switch_to(buf);
        b.list().matchers.push(Matcher::Pcre(pcre));
        b.current = keep;
    } else {
        b.list().matchers.push(Matcher::Pcre(pcre));
    }
    Ok(())
}

/// `content`.
pub(super) fn content(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let v = o.v();
    let negated = v.trim_start().starts_with('!');
    let text = if negated { &v.trim_start()[1..] } else { v };
    let pattern = content_bytes(text).map_err(|e| Refusal::Invalid(format!("content: {e}")))?;
    if pattern.is_empty() {
        return Err(Refusal::Invalid("empty content".into()));
    }
    c.b.push_content(Content::new(pattern, negated));
    Ok(())
}

/// `uricontent`: a content in `http.uri`.
pub(super) fn uricontent(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let pattern =
        content_bytes(o.need()?).map_err(|e| Refusal::Invalid(format!("uricontent: {e}")))?;
    let b = &mut c.b;
    b.require_app("http")?;
    let keep = b.current;
    b.switch_to(Buffer::HttpUri);
    b.push_content(Content::new(pattern, false));
    b.current = keep;
    Ok(())
}

/// Content modifiers without a value.
pub(super) fn nocase(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    c.b.last_content(o.name)?.nocase = true;
    Ok(())
}

pub(super) fn startswith(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    c.b.last_content(o.name)?.startswith = true;
    Ok(())
}

pub(super) fn endswith(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    c.b.last_content(o.name)?.endswith = true;
    Ok(())
}

/// `depth`, `offset`, `distance`, `within`: a number or a `byte_extract` variable.
pub(super) fn depth(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let v = val(o.need()?, &c.b.extract_vars)?;
    c.b.last_content(o.name)?.depth = Some(v);
    Ok(())
}

pub(super) fn offset(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let v = val(o.need()?, &c.b.extract_vars)?;
    c.b.last_content(o.name)?.offset = Some(v);
    Ok(())
}

pub(super) fn distance(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let v = val(o.need()?, &c.b.extract_vars)?;
    c.b.last_content(o.name)?.distance = Some(v);
    Ok(())
}

pub(super) fn within(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let v = val(o.need()?, &c.b.extract_vars)?;
    c.b.last_content(o.name)?.within = Some(v);
    Ok(())
}

/// `fast_pattern`, optionally `offset,length` of the content.
pub(super) fn fast_pattern(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let content = c.b.last_content(o.name)?;
    content.fast_pattern = true;
    if let Some(spec) = o
        .value
        .filter(|s| !s.trim().is_empty() && s.trim() != "only")
    {
        // fast_pattern:offset,length selects a slice of the content.
        let parts: Vec<usize> = spec
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect();
        if let [off, len] = parts[..] {
            content.fast_slice = Some((off, len));
        }
    }
    Ok(())
}

/// `isdataat:[!]N[,relative]`.
pub(super) fn isdataat(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let t = o.need()?.trim();
    let (negated, t) = match t.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let args = split_args(t);
    let n = val(&usize_arg(&args, 0, "isdataat value")?, &c.b.extract_vars)?;
    let relative = args.iter().skip(1).any(|a| a == "relative");
    c.b.list().matchers.push(Matcher::IsDataAt(IsDataAt {
        n,
        relative,
        negated,
    }));
    Ok(())
}

/// `bsize`: the buffer's size.
pub(super) fn bsize(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let r = parse_range(o.need()?).map_err(|e| Refusal::Invalid(e.to_string()))?;
    c.b.list().matchers.push(Matcher::Bsize(r));
    Ok(())
}

/// `urilen`: the size of `http.uri.raw`.
pub(super) fn urilen(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let spec = o.need()?.split(',').next().unwrap_or("").to_string();
    let r = parse_range(&spec).map_err(|e| Refusal::Invalid(e.to_string()))?;
    let b = &mut c.b;
    b.require_app("http")?;
    let keep = b.current;
    b.switch_to(Buffer::HttpUriRaw);
    b.list().matchers.push(Matcher::Bsize(r));
    b.current = keep;
    Ok(())
}

/// `pcre`.
pub(super) fn pcre(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    parse_pcre(o.need()?, &mut c.b)
}

/// `byte_test:bytes,op,value,offset[,flags…]`.
pub(super) fn byte_test(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let b = &mut c.b;
    let args = split_args(o.need()?);
    let bytes = val(&usize_arg(&args, 0, "byte_test bytes")?, &b.extract_vars)?;
    let op = usize_arg(&args, 1, "byte_test operator")?;
    let value = val(&usize_arg(&args, 2, "byte_test value")?, &b.extract_vars)?;
    let offset = val(&usize_arg(&args, 3, "byte_test offset")?, &b.extract_vars)?;
    let (flags, rest) = byte_flags(&args, 4)?;
    if let Some(unknown) = rest.first() {
        return Err(Refusal::UnsupportedKeyword(format!(
            "byte_test option {unknown}"
        )));
    }
    let t = ByteTest::new(
        bytes,
        &op,
        value,
        offset,
        flags.relative,
        flags.little,
        flags.string,
        flags.bitmask,
    )
    .map_err(|e| Refusal::Invalid(e.to_string()))?;
    b.list().matchers.push(Matcher::ByteTest(t));
    Ok(())
}

/// `byte_jump:bytes,offset[,flags…]`.
pub(super) fn byte_jump(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let b = &mut c.b;
    let args = split_args(o.need()?);
    let bytes: u8 = usize_arg(&args, 0, "byte_jump bytes")?
        .parse()
        .map_err(|_| Refusal::Invalid("byte_jump bytes".into()))?;
    let offset = val(&usize_arg(&args, 1, "byte_jump offset")?, &b.extract_vars)?;
    let (flags, rest) = byte_flags(&args, 2)?;
    let mut j = ByteJump {
        bytes,
        offset,
        relative: flags.relative,
        little: flags.little,
        string: flags.string,
        bitmask: flags.bitmask,
        multiplier: 1,
        align: false,
        from_beginning: false,
        from_end: false,
        post_offset: 0,
    };
    for r in rest {
        let mut w = r.split_whitespace();
        match (w.next(), w.next()) {
            (Some("multiplier"), Some(n)) => {
                j.multiplier = number(n).ok_or_else(|| Refusal::Invalid("multiplier".into()))?
            }
            (Some("post_offset"), Some(n)) => {
                j.post_offset = number(n).ok_or_else(|| Refusal::Invalid("post_offset".into()))?
            }
            (Some("align"), None) => j.align = true,
            (Some("from_beginning"), None) => j.from_beginning = true,
            (Some("from_end"), None) => j.from_end = true,
            _ => return Err(Refusal::UnsupportedKeyword(format!("byte_jump option {r}"))),
        }
    }
    // 0 bytes is a jump by `post_offset` alone (Suricata 7+).
    if (flags.string.is_none() && bytes > 8) || bytes > 23 {
        return Err(Refusal::Invalid(
            "byte_jump bytes must be 0-8 (or up to 23 with string)".into(),
        ));
    }
    b.list().matchers.push(Matcher::ByteJump(j));
    Ok(())
}

/// `byte_extract:bytes,offset,name[,flags…]`: later keywords may use `name` as a value.
pub(super) fn byte_extract(c: &mut Compiling<'_>, o: &Opt<'_>) -> Result<(), Refusal> {
    let b = &mut c.b;
    let args = split_args(o.need()?);
    let bytes: u8 = usize_arg(&args, 0, "byte_extract bytes")?
        .parse()
        .map_err(|_| Refusal::Invalid("byte_extract bytes".into()))?;
    let offset: i64 = number(&usize_arg(&args, 1, "byte_extract offset")?)
        .ok_or_else(|| Refusal::Invalid("byte_extract offset".into()))?;
    let var = usize_arg(&args, 2, "byte_extract name")?;
    let (flags, rest) = byte_flags(&args, 3)?;
    let mut e = ByteExtract {
        bytes,
        offset,
        var: var.clone(),
        relative: flags.relative,
        little: flags.little,
        string: flags.string,
        bitmask: flags.bitmask,
        multiplier: 1,
        align: 0,
    };
    for r in rest {
        let mut w = r.split_whitespace();
        match (w.next(), w.next()) {
            (Some("multiplier"), Some(n)) => {
                e.multiplier = number(n).ok_or_else(|| Refusal::Invalid("multiplier".into()))?
            }
            (Some("align"), Some(n)) => {
                e.align = number(n).ok_or_else(|| Refusal::Invalid("align".into()))?
            }
            _ => {
                return Err(Refusal::UnsupportedKeyword(format!(
                    "byte_extract option {r}"
                )))
            }
        }
    }
    b.extract_vars.push(var);
    b.list().matchers.push(Matcher::ByteExtract(e));
    Ok(())
}

/// `pkt_data`: back to the payload.
pub(super) fn pkt_data(c: &mut Compiling<'_>, _: &Opt<'_>) -> Result<(), Refusal> {
    c.b.current = 0;
    Ok(())
}

/// A transformation of the current sticky buffer.
pub(super) fn transform(c: &mut Compiling<'_>, o: &Opt<'_>, t: Transform) -> Result<(), Refusal> {
    if c.b.current == 0 {
        return Err(Refusal::Invalid(format!(
            "{} must follow a sticky buffer",
            o.name
        )));
    }
    c.b.list().transforms.push(t);
    Ok(())
}

/// A keyword outside the table: a legacy content modifier (the preceding content moves into
/// its buffer) or a sticky buffer; `None` when it is neither.
pub(super) fn buffer_keyword(c: &mut Compiling<'_>, name: &str) -> Option<Result<(), Refusal>> {
    let b = &mut c.b;
    if let Some(buf) = modifier_buffer(name) {
        return Some(
            b.require_app("http")
                .and_then(|()| b.move_last_content(buf, name)),
        );
    }
    let buf = Buffer::from_keyword(name)?;
    let app = buf.app()?;
    if let Some(rule_app) = b.app.filter(|a| *a != app) {
        if matches!(buf, Buffer::FileDataTs | Buffer::FileDataTc) {
            // Suricata fills file.data for SMTP attachments too; Precinct decodes none.
            return Some(Err(Refusal::UnsupportedKeyword(format!(
                "file.data of {rule_app}"
            ))));
        }
    }
    Some(b.require_app(app).map(|()| b.switch_to(buf)))
}
