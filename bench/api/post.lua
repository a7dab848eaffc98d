-- wrk: POST the seed's single-row body to /predict.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"data":[[5.1,3.5,1.4,0.2]]}'
