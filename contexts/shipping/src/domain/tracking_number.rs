/// A tracking number: the carrier code, ten digits and a Luhn check digit (`EMP48213907562`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrackingNumber(String);

fn luhn_digit(digits: &[u8]) -> u8 {
    // Double every second digit from the right, counting the check digit's future place.
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    ((10 - (sum % 10)) % 10) as u8
}

impl TrackingNumber {
    /// Builds one from a carrier code and ten digits.
    pub(crate) fn new(carrier: &str, digits: [u8; 10]) -> Self {
        let check = luhn_digit(&digits);
        let mut s = carrier.to_owned();
        for d in digits {
            s.push(char::from(b'0' + d % 10));
        }
        s.push(char::from(b'0' + check));
        Self(s)
    }

    /// Checks shape and check digit (so typos are caught before a lookup).
    pub(crate) fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim().to_ascii_uppercase();
        let split = s
            .find(|c: char| c.is_ascii_digit())
            .ok_or("not a tracking number")?;
        let (carrier, digits) = s.split_at(split);
        if carrier.is_empty()
            || carrier.len() > 16
            || !carrier.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Err("not a tracking number");
        }
        if digits.len() != 11 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("not a tracking number");
        }
        let values: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
        if luhn_digit(&values[..10]) != values[10] {
            return Err("the check digit does not match");
        }
        Ok(Self(s))
    }
}

impl AsRef<str> for TrackingNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_known_luhn_number_checks() {
        // 7992739871 has Luhn check digit 3.
        let n = TrackingNumber::new("EMP", [7, 9, 9, 2, 7, 3, 9, 8, 7, 1]);
        assert_eq!(n.as_ref(), "EMP79927398713");
        assert!(TrackingNumber::parse("emp79927398713").is_ok());
        assert!(TrackingNumber::parse("EMP79927398710").is_err());
        assert!(TrackingNumber::parse("79927398713").is_err());
    }

    proptest! {
        #[test]
        fn every_generated_number_parses_and_any_single_digit_typo_is_caught(digits in prop::array::uniform10(0u8..10), pos in 0usize..10, delta in 1u8..10) {
            let n = TrackingNumber::new("EMP", digits);
            prop_assert!(TrackingNumber::parse(n.as_ref()).is_ok());
            let mut typo = digits;
            typo[pos] = (typo[pos] + delta) % 10;
            let check = n.as_ref().chars().last().unwrap_or('0');
            let mut wrong = String::from("EMP");
            for d in typo { wrong.push(char::from(b'0' + d)); }
            wrong.push(check);
            prop_assert!(TrackingNumber::parse(&wrong).is_err());
        }
    }
}
