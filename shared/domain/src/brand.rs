//! A partner's brand: what the white-label billing page shows in place of the platform's name
//! and colours, and the sites that may embed that page.

use serde::{Deserialize, Serialize};

use super::{LABEL_MAX_CHARS, check_label, check_url};

/// Most sites a partner may let embed its billing page.
pub const EMBED_ORIGINS_MAX: usize = 10;
/// The page's buttons are white text on the primary colour, so the colour must be dark enough
/// for WCAG AA (a contrast of at least 4.5:1 with white). White's relative luminance is 1, so
/// `(1 + 0.05) / (L + 0.05) >= 4.5` is `L <= 0.18333...`: in the units of
/// [`luminance_e10`] (10^-10), at most this.
const MAX_LUMINANCE_E10: u64 = 1_833_333_333;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BrandError {
    #[error("must be 1 to {LABEL_MAX_CHARS} characters, without control characters")]
    Name,
    #[error("must be an https URL with a host (http is accepted for localhost)")]
    LogoUrl,
    #[error("must be a colour as #rrggbb, dark enough for white text on it (a contrast of at least 4.5:1)")]
    Colour,
    #[error(
        "must be at most {EMBED_ORIGINS_MAX} origins, each https://host[:port] without a path (http for localhost)"
    )]
    EmbedOrigins,
}

/// A partner's brand, part of its settings. Every field is optional: the page falls back to
/// the partner's name, no logo, and its own colours.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Brand {
    /// The name the page shows; `None`: the partner's name.
    #[serde(default)]
    pub name: Option<String>,
    /// An image the page shows beside the name.
    #[serde(default)]
    pub logo_url: Option<String>,
    /// Buttons, links and the header: `#rrggbb`.
    #[serde(default)]
    pub primary_color: Option<String>,
    /// Highlights (the balance): `#rrggbb`, as dark as the primary colour.
    #[serde(default)]
    pub accent_color: Option<String>,
    /// The sites (origins, `https://app.agency.example`) that may show the billing page in a
    /// frame, and hand it a token: the page's `frame-ancestors`.
    #[serde(default)]
    pub embed_origins: Vec<String>,
}

impl Brand {
    /// The field at fault and why.
    pub fn validate(&self) -> Result<(), (&'static str, BrandError)> {
        if let Some(name) = &self.name
            && check_label(name).ok().as_deref() != Some(name.as_str())
        {
            return Err(("brand.name", BrandError::Name));
        }
        if let Some(url) = &self.logo_url {
            check_url(url).map_err(|_| ("brand.logo_url", BrandError::LogoUrl))?;
        }
        for (param, colour) in
            [("brand.primary_color", &self.primary_color), ("brand.accent_color", &self.accent_color)]
        {
            if let Some(c) = colour
                && !readable_under_white(c)
            {
                return Err((param, BrandError::Colour));
            }
        }
        let origins_ok =
            self.embed_origins.len() <= EMBED_ORIGINS_MAX && self.embed_origins.iter().all(|o| is_origin(o));
        if !origins_ok {
            return Err(("brand.embed_origins", BrandError::EmbedOrigins));
        }
        Ok(())
    }
}

/// `https://host[:port]` (or `http://` for localhost), nothing after the authority: what a
/// browser names as a frame's parent and a message's sender.
pub fn is_origin(s: &str) -> bool {
    let Some((_, rest)) = s.split_once("://") else { return false };
    check_url(s).is_ok() && !rest.is_empty() && !rest.contains(['/', '?', '#']) && s == s.to_ascii_lowercase()
}

/// `#rrggbb` whose contrast with white is at least 4.5:1.
fn readable_under_white(colour: &str) -> bool {
    parse_hex(colour).is_some_and(|rgb| luminance_e10(rgb) <= MAX_LUMINANCE_E10)
}

fn parse_hex(colour: &str) -> Option<[u8; 3]> {
    let hex = colour.strip_prefix('#').filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))?;
    let byte = |pair: &str| u8::from_str_radix(pair, 16).ok();
    Some([byte(hex.get(0..2)?)?, byte(hex.get(2..4)?)?, byte(hex.get(4..6)?)?])
}

/// WCAG's relative luminance `0.2126 R + 0.7152 G + 0.0722 B` of the linear channels, in
/// units of 10^-10: the coefficients times 10^4, each channel from [`SRGB_TO_LINEAR_E6`].
/// Integers only, as everywhere in this crate. Black is 0, white 10^10.
fn luminance_e10([r, g, b]: [u8; 3]) -> u64 {
    let lin = |c: u8| u64::from(SRGB_TO_LINEAR_E6[usize::from(c)]);
    lin(r).saturating_mul(2126).saturating_add(lin(g).saturating_mul(7152)).saturating_add(lin(b).saturating_mul(722))
}

/// An 8-bit sRGB channel's linear value times 10^6, rounded: `c/12.92` up to 0.04045, else
/// `((c + 0.055) / 1.055)^2.4`, for `c` = the byte / 255 (the sRGB transfer function, as WCAG
/// gives it).
#[rustfmt::skip]
const SRGB_TO_LINEAR_E6: [u32; 256] = [
    0, 304, 607, 911, 1214, 1518, 1821, 2125, 2428, 2732, 3035, 3347,
    3677, 4025, 4391, 4777, 5182, 5605, 6049, 6512, 6995, 7499, 8023, 8568,
    9134, 9721, 10330, 10960, 11612, 12286, 12983, 13702, 14444, 15209, 15996, 16807,
    17642, 18500, 19382, 20289, 21219, 22174, 23153, 24158, 25187, 26241, 27321, 28426,
    29557, 30713, 31896, 33105, 34340, 35601, 36889, 38204, 39546, 40915, 42311, 43735,
    45186, 46665, 48172, 49707, 51269, 52861, 54480, 56128, 57805, 59511, 61246, 63010,
    64803, 66626, 68478, 70360, 72272, 74214, 76185, 78187, 80220, 82283, 84376, 86500,
    88656, 90842, 93059, 95307, 97587, 99899, 102242, 104616, 107023, 109462, 111932, 114435,
    116971, 119538, 122139, 124772, 127438, 130136, 132868, 135633, 138432, 141263, 144128, 147027,
    149960, 152926, 155926, 158961, 162029, 165132, 168269, 171441, 174647, 177888, 181164, 184475,
    187821, 191202, 194618, 198069, 201556, 205079, 208637, 212231, 215861, 219526, 223228, 226966,
    230740, 234551, 238398, 242281, 246201, 250158, 254152, 258183, 262251, 266356, 270498, 274677,
    278894, 283149, 287441, 291771, 296138, 300544, 304987, 309469, 313989, 318547, 323143, 327778,
    332452, 337164, 341914, 346704, 351533, 356400, 361307, 366253, 371238, 376262, 381326, 386429,
    391572, 396755, 401978, 407240, 412543, 417885, 423268, 428690, 434154, 439657, 445201, 450786,
    456411, 462077, 467784, 473531, 479320, 485150, 491021, 496933, 502886, 508881, 514918, 520996,
    527115, 533276, 539479, 545724, 552011, 558340, 564712, 571125, 577580, 584078, 590619, 597202,
    603827, 610496, 617207, 623960, 630757, 637597, 644480, 651406, 658375, 665387, 672443, 679542,
    686685, 693872, 701102, 708376, 715694, 723055, 730461, 737910, 745404, 752942, 760525, 768151,
    775822, 783538, 791298, 799103, 806952, 814847, 822786, 830770, 838799, 846873, 854993, 863157,
    871367, 879622, 887923, 896269, 904661, 913099, 921582, 930111, 938686, 947307, 955973, 964686,
    973445, 982251, 991102, 1000000,];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_white_text_can_be_read_on() {
        assert_eq!(luminance_e10([0, 0, 0]), 0);
        assert_eq!(luminance_e10([255, 255, 255]), 10_000_000_000);
        // #767676 is the lightest grey with 4.5:1 on white (4.54), #777777 is 4.48.
        assert!(readable_under_white("#767676"));
        assert!(!readable_under_white("#777777"));
        assert!(readable_under_white("#1d4ed8"));
        assert!(!readable_under_white("#ffcc00"), "yellow under white text is unreadable");
        for bad in ["1d4ed8", "#1d4ed", "#1d4ed8ff", "#gggggg", "", "#"] {
            assert!(!readable_under_white(bad), "{bad:?}");
        }
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for good in ["https://app.agency.example", "https://app.agency.example:8443", "http://localhost:5173"] {
            assert!(is_origin(good), "{good}");
        }
        for bad in [
            "https://app.agency.example/",
            "https://app.agency.example/billing",
            "http://app.agency.example",
            "https://App.Agency.example",
            "app.agency.example",
            "https://",
            "*",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }

    #[test]
    fn a_brand_names_the_field_at_fault() {
        assert_eq!(Brand::default().validate(), Ok(()));
        let good = Brand {
            name: Some("Acme Bots".into()),
            logo_url: Some("https://cdn.acme.example/logo.svg".into()),
            primary_color: Some("#1d4ed8".into()),
            accent_color: Some("#7c2d12".into()),
            embed_origins: vec!["https://app.acme.example".into()],
        };
        assert_eq!(good.validate(), Ok(()));
        let cases: [(Brand, &str); 6] = [
            (Brand { name: Some(" Acme".into()), ..good.clone() }, "brand.name"),
            (Brand { name: Some(String::new()), ..good.clone() }, "brand.name"),
            (Brand { logo_url: Some("ftp://x.example/l.png".into()), ..good.clone() }, "brand.logo_url"),
            (Brand { primary_color: Some("#ffffff".into()), ..good.clone() }, "brand.primary_color"),
            (Brand { accent_color: Some("red".into()), ..good.clone() }, "brand.accent_color"),
            (
                Brand { embed_origins: vec!["https://a.example".into(); EMBED_ORIGINS_MAX + 1], ..good.clone() },
                "brand.embed_origins",
            ),
        ];
        for (brand, param) in cases {
            assert_eq!(brand.validate().map_err(|(p, _)| p), Err(param), "{brand:?}");
        }
    }
}
