use super::*;

/// Decodes a PNG into (width, height, RGB pixels).
fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}

/// The mean row of the pixels near `color` between columns `from..to`, if any.
fn mean_row(pixels: &[u8], color: (u8, u8, u8), from: u32, to: u32) -> Option<f64> {
    let near = |a: u8, b: u8| a.abs_diff(b) < 40;
    let (mut sum, mut n) = (0.0, 0.0);
    for y in 0..HEIGHT {
        for x in from..to {
            let i = ((y * WIDTH + x) * 3) as usize;
            if near(pixels[i], color.0)
                && near(pixels[i + 1], color.1)
                && near(pixels[i + 2], color.2)
            {
                sum += f64::from(y);
                n += 1.0;
            }
        }
    }
    (n > 0.0).then(|| sum / n)
}

#[test]
fn the_png_is_the_chart_size_not_blank_and_its_line_goes_where_the_data_does() {
    let (start, end) = (1_764_219_000.0, 1_764_222_600.0);
    // Falls for the first half, then rises: a V.
    let points: Vec<(f64, f64)> = (0..=120)
        .map(|i| {
            let t = start + f64::from(i) * 30.0;
            (t, (f64::from(i) - 60.0).abs())
        })
        .collect();
    let series = [Series {
        label: "lag{topic=\"trades\"}".into(),
        points,
    }];
    let picture = Picture {
        title: "ConsumerLag",
        series: &series,
        action: Some(start + 1800.0),
        range: (start, end),
    };
    let (w, h, pixels) = decode(&png(&picture).expect("drawn"));
    assert_eq!((w, h), (WIDTH, HEIGHT));
    let ink = pixels.chunks(3).filter(|p| p != &[255, 255, 255]).count();
    assert!(ink > 5_000, "not blank: {ink} pixels drawn");

    let line = series_color(0);
    let color = (line.0, line.1, line.2);
    // Columns well inside the plot: left edge, middle (the V's bottom), right edge.
    let left = mean_row(&pixels, color, 120, 160).expect("the line at the left");
    let middle = mean_row(&pixels, color, 480, 520).expect("the line in the middle");
    let right = mean_row(&pixels, color, 880, 920).expect("the line at the right");
    assert!(
        middle > left + 100.0,
        "high values are drawn higher: {left} vs {middle}"
    );
    assert!(middle > right + 100.0, "{right} vs {middle}");

    // The action: a red vertical line in the middle of the plot.
    let red = mean_row(&pixels, (255, 0, 0), 0, WIDTH).expect("the action line");
    assert!(red > 40.0 && red < f64::from(HEIGHT) - 40.0, "{red}");
}

#[test]
fn labels_are_utc_and_a_flat_or_empty_chart_still_draws() {
    assert_eq!(utc_label(1_764_219_300.0), "04:55");
    assert_eq!(value_range(&[]), (0.0, 1.0));
    let flat = [Series {
        label: "90".into(),
        points: vec![(0.0, 90.0), (60.0, 90.0)],
    }];
    let (low, high) = value_range(&flat);
    assert!(low < 90.0 && high > 90.0);
    let picture = Picture {
        title: "flat",
        series: &flat,
        action: Some(30.0),
        range: (0.0, 60.0),
    };
    assert!(png(&picture).is_ok());
}

#[test]
fn a_chart_without_an_action_has_no_red_line() {
    let series = [Series {
        label: "lag".into(),
        points: (0..60)
            .map(|i| (f64::from(i) * 30.0, f64::from(i)))
            .collect(),
    }];
    let mut picture = Picture {
        title: "trend",
        series: &series,
        action: None,
        range: (0.0, 1800.0),
    };
    let (_, _, pixels) = decode(&png(&picture).expect("drawn"));
    assert!(
        mean_row(&pixels, (255, 0, 0), 0, WIDTH).is_none(),
        "no action line"
    );
    picture.action = Some(900.0);
    let (_, _, pixels) = decode(&png(&picture).expect("drawn"));
    assert!(
        mean_row(&pixels, (255, 0, 0), 0, WIDTH).is_some(),
        "the same chart with one"
    );
}
